import { DriverException } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partialFailuresOf, ShardedMikroORM, ShardingError, shardFailureOf, type CircuitStateChange, type PartialFailures } from 'mikro-orm-sharding';
import { Author, Book, entities } from './support/entities.ts';
import { startPgInstance, type PgInstance } from './support/pg-instance.ts';

// A shard server dies in the middle of a workload, then comes back. Shards on throwaway PostgreSQL servers (never the
// shared one): s0 and s1 on `steady`, s2 alone on `doomed`, which is stopped with `pg_ctl stop -m immediate` (every
// connection dropped at once, as in a crash) and started again. Authors live on `id % 3`.

const CONNECT_TIMEOUT_MS = 1_000;
const COOL_DOWN_MS = 1_000;

let steady: PgInstance;
let doomed: PgInstance;
let orm: ShardedMikroORM<PostgreSqlDriver, 's0' | 's1' | 's2'>;
const changes: CircuitStateChange[] = [];

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
    await sleep(300);
    stopping = performance.now();
    await doomed.stop('immediate');
    stoppedAt = performance.now();
    await sleep(500);
    stop = true;
    await Promise.all(workers);
    died.resolve();
    await holding;
    await holder.close(true);

    expectUnavailable((await blocked).error, 's2');
    const before = results.filter(result => result.startedAt + result.ms < stopping);
    expect(before.length).toBeGreaterThan(10);
    expect(before.filter(result => result.error !== undefined)).toEqual([]);
    const after = results.filter(result => result.startedAt > stoppedAt);
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

  it('fails a flush that touches the dead shard by naming it; the living shard commits nothing (mode multi)', async () => {
    const em = orm.em.fork();
    em.create(Author, { id: 3_000, name: 'on s0' });
    em.create(Author, { id: 3_002, name: 'on s2' });
    const flush = await outcome(() => em.flush());
    expectUnavailable(flush.error, 's2');
    expect(shardFailureOf(flush.error)).toMatchObject({ operation: 'flush', done: [] });
    expect(await orm.em.fork().findOne(Author, 3_000, { shard: 's0' })).toBeNull();
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
