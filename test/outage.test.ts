import { DriverException } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { partialFailuresOf, ShardedMikroORM, ShardingError, shardFailureOf, type CircuitStateChange, type PartialFailures } from 'mikro-orm-sharding';
// White-box: the two-phase commit's test-only hook, to stop a shard's server at a step of the protocol.
import { setCrashPoint } from '../packages/mikro-orm-sharding/src/transactions/crash-point.ts';
import { committedRows } from './support/committed.ts';
import { Author, Book, entities } from './support/entities.ts';
import { startPgInstance, type PgInstance } from './support/pg-instance.ts';

// A shard server dies in the middle of a workload, then comes back. Shards on throwaway PostgreSQL servers (never the
// shared one): s0 and s1 on `steady`, s2 alone on `doomed`, which is stopped with `pg_ctl stop -m immediate` (every
// connection dropped at once, as in a crash) and started again. Authors live on `id % 3`.

const CONNECT_TIMEOUT_MS = 1_000;
const COOL_DOWN_MS = 1_000;

let steady: PgInstance;
let doomed: PgInstance;
type Fleet = ShardedMikroORM<PostgreSqlDriver, 's0' | 's1' | 's2'>;
let orm: Fleet;
const changes: CircuitStateChange[] = [];
/** `orm`'s query log. */
const lines: string[] = [];

const shardOf = (id: number) => `s${id % 3}` as const;
/** The authors every shard holds before the outage: ids 1..30. */
const SEEDED = Array.from({ length: 30 }, (_, i) => i + 1);

/** The fleet: small pools, a short connect timeout. */
const fleetOptions = () => ({
  driver: PostgreSqlDriver,
  entities,
  pool: { min: 0, max: 3 },
  driverOptions: { connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
  shards: {
    s0: { clientUrl: steady.url, dbName: 'shard_s0' },
    s1: { clientUrl: steady.url, dbName: 'shard_s1' },
    s2: { clientUrl: doomed.url, dbName: 'shard_s2' },
  },
  shardChooser: ({ entity }: { entity: object }) => shardOf((entity as Author).id),
  idChooser: ({ id }: { id: unknown }) => [shardOf(Number(id))],
});

beforeAll(async () => {
  [steady, doomed] = await Promise.all([startPgInstance(), startPgInstance()]);
  orm = await ShardedMikroORM.init({
    ...fleetOptions(),
    connect: false,
    circuitBreaker: { failureThreshold: 3, coolDownMs: COOL_DOWN_MS, onStateChange: change => changes.push(change) },
    debug: ['query'],
    logger: (line: string) => lines.push(line),
  });
  await orm.schema.ensureDatabase();
  await orm.schema.create();
  const em = orm.em.fork();
  SEEDED.forEach(id => em.create(Author, { id, name: `author ${id}` }));
  await em.flush();
}, 60_000);

afterAll(async () => {
  await orm?.close(true);
  await Promise.all([steady?.dispose(), doomed?.dispose()]);
});

/** What a call failed with, and how long it took. */
async function outcome(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const start = performance.now();
  try {
    await call();
    return { error: undefined, ms: performance.now() - start };
  } catch (error) {
    return { error, ms: performance.now() - start };
  }
}

function expectUnavailable(error: unknown, shard: string): asserts error is ShardingError {
  expect(error).toBeInstanceOf(ShardingError);
  expect(error).toMatchObject({ code: 'SHARD_UNAVAILABLE', shard });
  expect((error as Error).message).toContain(`Shard "${shard}" is unavailable`);
  expect(shardFailureOf(error)?.shard).toBe(shard);
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Starts `doomed` again if it is down, and waits for the end of the cool-down if s2's circuit in `fleet` is not closed. */
async function backUp(fleet: Fleet): Promise<void> {
  if (!doomed.running) {
    await doomed.start();
  }
  const retryAt = fleet.shardState('s2').retryAt;
  if (retryAt) {
    await sleep(retryAt.getTime() - Date.now());
  }
}
const ids = (authors: readonly Author[]) => authors.map(author => author.id);

describe('a shard server that dies in the middle of a workload and comes back', () => {
  it('keeps serving the living shards and fails the dead one fast, by name', async () => {
    // A query on s2 waiting behind a lock (on another table than the workload's) when the server dies.
    const holder = await ShardedMikroORM.init({ ...fleetOptions(), shards: { s2: fleetOptions().shards.s2 } });
    const locked = Promise.withResolvers<void>();
    const died = Promise.withResolvers<void>();
    const holding = holder.em
      .fork()
      .on('s2')
      .transactional(async em => {
        const run = (sql: string) => em.getConnection().execute(sql, [], 'run', em.getTransactionContext());
        await run('lock table book in access exclusive mode');
        locked.resolve();
        await died.promise;
        await run('select 1');
      })
      .catch(() => undefined);
    await locked.promise;
    const blocked = outcome(() => orm.em.fork().count(Book, {}, { shard: 's2' }));

    // A workload over every shard: routed writes and reads, until told to stop.
    let nextId = 1_000;
    let stop = false;
    let stopping = Infinity;
    let stoppedAt = Infinity;
    const results: { shard: string; error: unknown; ms: number; startedAt: number }[] = [];
    const worker = async () => {
      while (!stop) {
        const id = nextId++;
        const startedAt = performance.now();
        const result = await outcome(async () => {
          const em = orm.em.fork();
          em.create(Author, { id, name: `w${id}` });
          await em.flush();
          expect((await orm.em.fork().findOne(Author, id))?.name).toBe(`w${id}`);
        });
        results.push({ shard: shardOf(id), startedAt, ...result });
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    // Enough work done before the stop, however busy the machine is.
    while (results.length <= 10) await sleep(20);
    stopping = performance.now();
    await doomed.stop('immediate');
    stoppedAt = performance.now();
    const afterStop = () => results.filter(result => result.startedAt > stoppedAt);
    while (afterStop().filter(r => r.shard === 's2').length <= 3 || afterStop().filter(r => r.shard !== 's2').length <= 10) await sleep(20);
    stop = true;
    await Promise.all(workers);
    died.resolve();
    await holding;
    await holder.close(true);

    expectUnavailable((await blocked).error, 's2');
    const before = results.filter(result => result.startedAt + result.ms < stopping);
    expect(before.length).toBeGreaterThan(10);
    expect(before.filter(result => result.error !== undefined)).toEqual([]);
    const after = afterStop();
    for (const result of after) {
      if (result.shard === 's2') {
        expectUnavailable(result.error, 's2');
        expect(result.ms).toBeLessThan(CONNECT_TIMEOUT_MS);
      } else {
        expect(result.error).toBeUndefined();
      }
    }
    expect(after.filter(result => result.shard === 's2').length).toBeGreaterThan(3);
    expect(after.filter(result => result.shard !== 's2').length).toBeGreaterThan(10);
  });

  it("opens the dead shard's circuit: it is refused at once, and the application sees it", async () => {
    const state = orm.shardState('s2');
    expect(state).toMatchObject({ state: 'open', shard: 's2' });
    expect(state.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(state.lastError?.code).toBe('ECONNREFUSED');
    expect(state.retryAt!.getTime() - state.openedAt!.getTime()).toBe(COOL_DOWN_MS);
    expect(orm.health()).toMatchObject({ s0: { state: 'closed', failures: 0 }, s1: { state: 'closed' }, s2: { state: 'open' } });
    expect(changes[0]).toMatchObject({ shard: 's2', from: 'closed', to: 'open', health: { state: 'open' } });
    const refused = await outcome(() => orm.em.fork().findOne(Author, 2));
    expectUnavailable(refused.error, 's2');
    expect((refused.error as Error).message).toMatch(/circuit breaker is open after \d+ connection failures in a row \(last: connect ECONNREFUSED/);
    expect(((refused.error as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(orm.shardState('s2').refused).toBeGreaterThan(0);
    // Plain MikroORM on the shard is refused by the same breaker, in MikroORM's own error class.
    const plain = await outcome(() => orm.em.fork().on('s2').findOne(Author, 2));
    expect(plain.error).toBeInstanceOf(DriverException);
    expect(plain.error).toMatchObject({ code: 'SHARD_UNAVAILABLE', message: expect.stringContaining('circuit breaker is open') });
  });

  it("fails a fan-out by default; with 'partial' answers from the living shards and tells which did not", async () => {
    const fanOut = await outcome(() => orm.em.fork().find(Author, {}, { orderBy: { id: 'desc' }, limit: 5 }));
    expectUnavailable(fanOut.error, 's2');
    const living = SEEDED.filter(id => shardOf(id) !== 's2');
    const page = await orm.em.fork().find(Author, { id: { $lte: 30 } }, { orderBy: { id: 'desc' }, limit: 5, onShardError: 'partial' });
    expect(ids(page)).toEqual(living.toReversed().slice(0, 5));
    expect(partialFailuresOf(page)).toMatchObject({ operation: 'find', answered: ['s0', 's1'], failed: [{ shard: 's2' }] });
    expectUnavailable(partialFailuresOf(page)!.failed[0]!.error, 's2');
    let told: PartialFailures | undefined;
    const count = await orm.em.fork().count(Author, { id: { $lte: 30 } }, { onShardError: report => (told = report) });
    expect(count).toBe(living.length);
    expect(told).toMatchObject({ operation: 'count', answered: ['s0', 's1'], failed: [{ shard: 's2' }] });
    const strict = new Error('not without s2');
    const refusedPartial = await outcome(() =>
      orm.em.fork().count(
        Author,
        {},
        {
          onShardError: () => {
            throw strict;
          },
        },
      ),
    );
    expect(refusedPartial.error).toBe(strict);
    const [all, total] = await orm.em.fork().findAndCount(Author, { id: { $lte: 30 } }, { onShardError: 'partial', orderBy: { id: 'asc' } });
    expect([ids(all), total]).toEqual([living, living.length]);
    expect(partialFailuresOf(all)?.failed[0]?.shard).toBe('s2');

    // Without a breaker the dead shard is asked each time; the read runs again over the shards that answered.
    const unguarded = await ShardedMikroORM.init({ ...fleetOptions(), connect: false, circuitBreaker: false, onShardError: 'partial' });
    try {
      const found = await unguarded.em.fork().find(Author, { id: { $lte: 30 } }, { orderBy: { id: 'asc' } });
      expect(ids(found)).toEqual(living);
      expect(partialFailuresOf(found)?.failed.map(failed => failed.shard)).toEqual(['s2']);
      expect(unguarded.shardState('s2')).toMatchObject({ state: 'closed', lastError: { code: 'ECONNREFUSED' } });
      expect(unguarded.shardState('s2').consecutiveFailures).toBeGreaterThan(0);
      // A lookup by primary key, and findOne by query, never answer partially: "not found" would be a lie.
      expectUnavailable((await outcome(() => unguarded.em.fork().findOne(Author, { name: 'author 2' }))).error, 's2');
    } finally {
      await unguarded.close(true);
    }
  });

  it('refuses a flush or a transaction that would write to the shard whose circuit is open, before any shard writes', async () => {
    // A whole cool-down ahead: wait for the current one to end, and let the probe fail.
    const retryAt = orm.shardState('s2').retryAt!;
    await sleep(retryAt.getTime() - Date.now());
    await outcome(() => orm.em.fork().findOne(Author, 2));
    expect(orm.shardState('s2').state).toBe('open');
    lines.length = 0;

    const em = orm.em.fork();
    em.create(Author, { id: 3_000, name: 'on s0' });
    em.create(Author, { id: 3_002, name: 'on s2' });
    const flush = await outcome(() => em.flush());
    expectUnavailable(flush.error, 's2');
    expect((flush.error as Error).message).toContain('circuit breaker is open');
    expect(shardFailureOf(flush.error)).toMatchObject({ operation: 'flush', done: [], failed: [{ shard: 's2' }] });
    const transaction = await outcome(() =>
      orm.em.fork().transactional(async tx => {
        tx.create(Author, { id: 3_003, name: 'on s0' });
        tx.create(Author, { id: 3_004, name: 'on s1' });
        tx.create(Author, { id: 3_008, name: 'on s2' });
      }),
    );
    expectUnavailable(transaction.error, 's2');
    expect(shardFailureOf(transaction.error)).toMatchObject({ operation: 'transaction', done: [] });
    // Not even a BEGIN on the living shards.
    expect(lines.filter(line => /\(shard s[01]\)/.test(line))).toEqual([]);
    expect(await orm.em.fork().count(Author, { id: { $gte: 3_000, $lt: 3_010 } }, { onShardError: 'partial' })).toBe(0);
  });

  it('serves the shard again once its server is back, with the same ORM', async () => {
    await doomed.start();
    await sleep(COOL_DOWN_MS);
    expect((await orm.em.fork().findOne(Author, 2))?.name).toBe('author 2');
    expect(orm.shardState('s2')).toMatchObject({ state: 'closed', consecutiveFailures: 0, retryAt: undefined });
    expect(changes.slice(-2).map(change => [change.from, change.to])).toEqual([
      ['open', 'half-open'],
      ['half-open', 'closed'],
    ]);
    const em = orm.em.fork();
    em.create(Author, { id: 3_005, name: 'after' });
    await em.flush();
    const everything = await orm.em.fork().find(Author, { id: { $lte: 30 } }, { orderBy: { id: 'asc' } });
    expect(ids(everything)).toEqual(SEEDED);
    expect(partialFailuresOf(everything)).toBeUndefined();
    expect(await orm.em.fork().count(Author, { id: 3_005 })).toBe(1);
  });
});

describe('a transaction cut off by the outage', () => {
  it('does not keep its pooled connection: the shard is served again once back', { timeout: 20_000 }, async () => {
    const solo = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      entities,
      pool: { min: 0, max: 1 },
      driverOptions: { connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
      shards: { s2: { clientUrl: doomed.url, dbName: 'shard_s2' } },
      shardChooser: () => 's2',
      circuitBreaker: false,
    });
    try {
      const cut = await outcome(() =>
        solo.em
          .fork()
          .on('s2')
          .transactional(async em => {
            await em.findOne(Author, 2);
            await doomed.stop('immediate');
            await em.findOne(Author, 5);
          }),
      );
      expect(cut.error).toBeInstanceOf(Error);
      await doomed.start();
      // The only pooled connection was the transaction's: it must have been given back for this to connect.
      expect((await solo.em.fork().findOne(Author, 2))?.name).toBe('author 2');
    } finally {
      await solo.close(true);
    }
  });
});

describe('a transaction whose shard dies under it', () => {
  let bank: Fleet;
  /** `bank`'s query log. */
  const said: string[] = [];

  beforeAll(async () => {
    await backUp(orm);
    bank = await ShardedMikroORM.init({
      ...fleetOptions(),
      circuitBreaker: { failureThreshold: 3, coolDownMs: COOL_DOWN_MS },
      twoPhaseCommit: { coordinatorId: 'outage', logShard: 's0' },
      debug: ['query'],
      logger: (line: string) => said.push(line),
    });
  });

  afterAll(() => bank?.close(true));

  afterEach(async () => {
    setCrashPoint(undefined);
    await backUp(bank);
    expect(await preparedGids()).toEqual([]);
  });

  /** The prepared transactions on both servers (one is alone on each: these are ours). */
  async function preparedGids(): Promise<string[]> {
    const gids: string[] = [];
    for (const shard of ['s0', 's2'] as const) {
      const rows: { gid: string }[] = await bank.shard(shard).em.getConnection().execute('select gid from pg_prepared_xacts order by gid');
      gids.push(...rows.map(row => row.gid));
    }
    return gids;
  }

  async function loggedDecisions(fleet: Fleet, shard: 's0' | 's2'): Promise<string[]> {
    const rows: { txid: string }[] = await fleet.shard(shard).em.getConnection().execute('select txid from mikro_orm_sharding_2pc');
    return rows.map(row => row.txid);
  }

  /** Committed authors on the living shards (s2 cannot be asked). */
  async function livingRows(fleet: Fleet): Promise<Record<string, number>> {
    const all = await fleet.em.fork().count(Author, {}, { onShardError: 'partial' });
    const s0 = await fleet.em.fork().count(Author, {}, { shard: 's0' });
    return { s0, s1: all - s0 };
  }

  it.each(['multi', 'twopc'] as const)('%s: the next statement there fails with SHARD_UNAVAILABLE naming it, and every shard rolls back', async mode => {
    const before = await committedRows(bank, 'author');
    const cut = await outcome(() =>
      bank.em.fork().transactional(
        async tx => {
          tx.create(Author, { id: 4_000, name: 'on s1' });
          tx.create(Author, { id: 4_001, name: 'on s2' });
          tx.create(Author, { id: 4_002, name: 'on s0' });
          await tx.flush();
          await doomed.stop('immediate');
          await tx.findOne(Author, 5);
        },
        { mode },
      ),
    );
    expectUnavailable(cut.error, 's2');
    await backUp(bank);
    expect(await committedRows(bank, 'author')).toEqual(before);
  });

  it.each(['multi', 'twopc'] as const)('%s: a commit that fails on the dead shard commits on none', async mode => {
    const before = await committedRows(bank, 'author');
    const cut = await outcome(() =>
      bank.em.fork().transactional(
        async tx => {
          await tx.findOne(Author, 2); // s2 first: in multi mode it is the first to commit
          tx.create(Author, { id: 4_010, name: 'on s1' });
          tx.create(Author, { id: 4_011, name: 'on s2' });
          tx.create(Author, { id: 4_012, name: 'on s0' });
          await tx.flush();
          await doomed.stop('immediate');
        },
        { mode },
      ),
    );
    expectUnavailable(cut.error, 's2');
    expect(shardFailureOf(cut.error)).toMatchObject({ operation: 'transaction', done: [] });
    await backUp(bank);
    expect(await committedRows(bank, 'author')).toEqual(before);
    expect(await loggedDecisions(bank, 's0')).toEqual([]);
  });

  it('multi: a commit is refused before any shard commits once the circuit of a shard it wrote to is open', async () => {
    const before = await committedRows(bank, 'author');
    const refused = await outcome(() =>
      bank.em.fork().transactional(async tx => {
        tx.create(Author, { id: 4_020, name: 'on s1' });
        tx.create(Author, { id: 4_021, name: 'on s2' });
        tx.create(Author, { id: 4_022, name: 'on s0' });
        await tx.flush();
        await doomed.stop('immediate');
        // Other requests meet the dead shard and open its circuit.
        for (let i = 0; i < 3; i++) await outcome(() => bank.em.fork().findOne(Author, 2));
        expect(bank.shardState('s2').state).toBe('open');
      }),
    );
    expectUnavailable(refused.error, 's2');
    expect((refused.error as Error).message).toContain('circuit breaker is open');
    expect(shardFailureOf(refused.error)).toMatchObject({ operation: 'transaction', done: [] });
    expect(await livingRows(bank)).toEqual({ s0: before.s0, s1: before.s1 });
    await backUp(bank);
    expect(await committedRows(bank, 'author')).toEqual(before);
  });

  it("twopc, the decision logged: the call returns, and recover() commits the dead shard's part once it is back", async () => {
    const before = await committedRows(bank, 'author');
    said.length = 0;
    // The commit decision is in the log (on s0); s2 dies before its COMMIT PREPARED reaches it.
    setCrashPoint(step => (step === 'logged' ? doomed.stop('immediate') : undefined));
    await bank.em.fork().transactional(
      async tx => {
        tx.create(Author, { id: 4_030, name: 'on s1' });
        tx.create(Author, { id: 4_031, name: 'on s2' });
        tx.create(Author, { id: 4_032, name: 'on s0' });
      },
      { mode: 'twopc' },
    );
    setCrashPoint(undefined);
    expect(said.join('\n')).toMatch(/two-phase commit [0-9a-f]{32} is committed, but COMMIT PREPARED failed on shard s2/);
    expect(await livingRows(bank)).toEqual({ s0: before.s0! + 1, s1: before.s1! + 1 });
    // While s2 is down, recovery cannot ask it: it keeps the decision for later.
    const early = await bank.recover();
    expect(early).toMatchObject({ committed: [], rolledBack: [], failed: [{ shard: 's2' }] });
    expectUnavailable(early.failed[0]!.error, 's2');
    const [txid, ...more] = await loggedDecisions(bank, 's0');
    expect(more).toEqual([]);

    await backUp(bank);
    const gid = `mos:outage:${txid}:s2`;
    expect(await preparedGids()).toEqual([gid]);
    expect(await committedRows(bank, 'author')).toEqual({ s0: before.s0! + 1, s1: before.s1! + 1, s2: before.s2 });
    expect(await bank.recover()).toEqual({ committed: [gid], rolledBack: [], failed: [] });
    expect(await committedRows(bank, 'author')).toEqual({ s0: before.s0! + 1, s1: before.s1! + 1, s2: before.s2! + 1 });
    expect(await loggedDecisions(bank, 's0')).toEqual([]);
  });

  it('twopc, the decision never logged (the log shard died): TRANSACTION_IN_DOUBT, and recover() rolls back every shard once it is back', async () => {
    await using ledger = await ShardedMikroORM.init({
      ...fleetOptions(),
      circuitBreaker: false,
      transactionMode: 'twopc',
      twoPhaseCommit: { coordinatorId: 'outage_ledger', logShard: 's2' },
    });
    const before = await committedRows(ledger, 'author');
    // Every shard has prepared; s2, which holds the log and its uncommitted decision, dies before the decision commits.
    setCrashPoint(step => (step === 'prepared' ? doomed.stop('immediate') : undefined));
    const doubt = await outcome(() =>
      ledger.em.fork().transactional(async tx => {
        tx.create(Author, { id: 4_040, name: 'on s1' });
        tx.create(Author, { id: 4_041, name: 'on s2' });
        tx.create(Author, { id: 4_042, name: 'on s0' });
      }),
    );
    setCrashPoint(undefined);
    expect(doubt.error).toBeInstanceOf(ShardingError);
    expect(doubt.error).toMatchObject({ code: 'TRANSACTION_IN_DOUBT', shard: 's2' });
    // The living shards hold their prepared parts (and their rows' locks) until recovery.
    const living: { gid: string }[] = await ledger.shard('s0').em.getConnection().execute('select gid from pg_prepared_xacts order by gid');
    expect(living.map(row => row.gid)).toEqual([expect.stringMatching(/^mos:outage_ledger:[0-9a-f]{32}:s0$/), expect.stringMatching(/:s1$/)]);
    expect(await livingRows(ledger)).toEqual({ s0: before.s0, s1: before.s1 });
    // Recovery needs the log.
    expectUnavailable((await outcome(() => ledger.recover())).error, 's2');

    await backUp(ledger);
    const gids = await preparedGids();
    expect(gids).toHaveLength(3);
    const report = await ledger.recover();
    expect(report).toEqual({ committed: [], rolledBack: expect.arrayContaining(gids), failed: [] });
    expect(report.rolledBack).toHaveLength(3);
    expect(await committedRows(ledger, 'author')).toEqual(before);
    expect(await loggedDecisions(ledger, 's2')).toEqual([]);
  });
});
