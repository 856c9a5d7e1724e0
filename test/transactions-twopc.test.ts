/**
 * Two-phase commit on PostgreSQL shards: PREPARE TRANSACTION on every shard a transaction touched, the decision in
 * the coordinator log, COMMIT PREPARED; recovery of what a crash leaves prepared (the crash harness itself is
 * transactions-crash.test.ts); and the fleets and servers that cannot do it.
 */
import { ForeignKeyConstraintViolationException, type EventSubscriber, type TransactionEventArgs } from '@mikro-orm/core';
import { PostgreSqlDriver, type PostgreSqlConnection } from '@mikro-orm/postgresql';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { shardFailureOf, ShardedMikroORM, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
// White-box: the seal that keeps a prepared shard from flushing is internal.
import { seal, unseal } from '../packages/mikro-orm-sharding/src/transactions/flush-gate.ts';
import { committedRows } from './support/committed.ts';
import { startPgInstance } from './support/pg-instance.ts';
import { Author, Book, entities } from './support/entities.ts';
import { shardChooser, shardOfId } from './support/fleet.ts';
import { postgresTopology, sqliteTopology, type Topology } from './support/topology.ts';

/** Unique per run: prepared transaction ids are server-wide, and other test runs may share the server. */
const coordinatorId = `test_${process.pid}_${Date.now().toString(36)}`;
const logTable = 'mikro_orm_sharding_2pc';

let topology: Topology;
let orm: ShardedMikroORM;
const lines: string[] = [];
const events: string[] = [];

const recordEvents: EventSubscriber = {
  beforeTransactionCommit: ({ em }: TransactionEventArgs) => void events.push(`before commit ${em.config.get('contextName')}`),
  afterTransactionCommit: ({ em }: TransactionEventArgs) => void events.push(`after commit ${em.config.get('contextName')}`),
};

function options(overrides: Partial<ShardedMikroORMOptions> = {}): ShardedMikroORMOptions {
  return {
    ...topology.shared,
    entities,
    shards: topology.shards(3),
    shardChooser,
    idChooser: ({ entityName, id }) => (entityName === 'Author' ? [shardOfId(id)] : ['s0', 's1', 's2']),
    transactionMode: 'twopc',
    twoPhaseCommit: { coordinatorId, logShard: 's0' },
    debug: ['query'],
    logger: line => lines.push(line),
    colors: false,
    subscribers: [recordEvents],
    ...overrides,
  };
}

const connection = (shard: string) => orm.shard(shard).em.getConnection() as unknown as PostgreSqlConnection;

/** This run's prepared transactions, server-wide. */
async function prepared(): Promise<string[]> {
  const rows: { gid: string }[] = await connection('s0').execute('select gid from pg_prepared_xacts where starts_with(gid, ?) order by gid', [
    `mos:${coordinatorId}:`,
  ]);
  return rows.map(row => row.gid);
}

async function logged(): Promise<string[]> {
  const rows: { txid: string }[] = await connection('s0').execute(`select txid from "${logTable}" where coordinator = ?`, [coordinatorId]);
  return rows.map(row => row.txid);
}

/** Leaves a transaction prepared on a shard, as a crashed coordinator would. */
async function prepareOn(shard: string, gid: string, sql: string): Promise<void> {
  const conn = connection(shard);
  const trx = await conn.begin();
  await conn.execute(sql, [], 'run', trx);
  await conn.execute(`prepare transaction '${gid}'`, [], 'run', trx);
  await conn.commit(trx);
}

beforeAll(async () => {
  topology = postgresTopology();
  orm = await ShardedMikroORM.init(options());
  await orm.schema.refresh();
  const em = orm.em.fork();
  for (const id of [1, 2, 3]) {
    em.create(Author, { id, name: `author-${id}` });
  }
  await em.flush();
});

afterAll(async () => {
  await orm?.close(true);
  await topology?.dispose();
});

beforeEach(() => {
  lines.length = 0;
  events.length = 0;
});

const statements = (pattern: RegExp) => lines.map(line => line.replace(/^\[query\] /, '').replace(/ \[took .*$/, '')).filter(line => pattern.test(line));

describe('two-phase commit', () => {
  it('prepares every shard, logs the decision, commits every prepared part, and leaves nothing behind', async () => {
    const before = await committedRows(orm, 'author');
    await orm.em.fork().transactional(async tx => {
      tx.create(Author, { id: 11, name: 's2' });
      tx.create(Author, { id: 13, name: 's1' });
    });
    expect(await committedRows(orm, 'author')).toEqual({ ...before, s1: before.s1! + 1, s2: before.s2! + 1 });
    const prepares = statements(/prepare transaction/);
    expect(prepares.map(line => line.replace(/'.*'/, 'GID')).sort()).toEqual(['(shard s1) prepare transaction GID', '(shard s2) prepare transaction GID']);
    const [, txid] = /'mos:[^:]+:([0-9a-f]{32}):s\d'/.exec(prepares[0]!)!;
    for (const shard of ['s1', 's2']) {
      expect(prepares).toContain(`(shard ${shard}) prepare transaction 'mos:${coordinatorId}:${txid}:${shard}'`);
      expect(statements(/commit prepared/)).toContain(`(shard ${shard}) commit prepared 'mos:${coordinatorId}:${txid}:${shard}'`);
    }
    expect(statements(/insert into "mikro_orm_sharding_2pc"/)).toHaveLength(1);
    expect(await prepared()).toEqual([]);
    expect(await logged()).toEqual([]);
    // MikroORM's transaction events, on each shard: before the prepare, and after the commit.
    expect(events.sort()).toEqual(['after commit s1', 'after commit s2', 'before commit s1', 'before commit s2']);
  });

  it('commits a transaction that touched one shard in one phase', async () => {
    await orm.em.fork().transactional(async tx => {
      tx.create(Author, { id: 21, name: 's0' });
    });
    expect(statements(/prepare|mikro_orm_sharding_2pc/)).toEqual([]);
    expect(statements(/^\(shard s0\) (begin|commit)/)).toEqual(['(shard s0) begin', '(shard s0) commit']);
  });

  it('a flush of several shards outside transactional() commits in two phases too (the fleet default)', async () => {
    const em = orm.em.fork();
    em.create(Author, { id: 31, name: 's1' });
    em.create(Author, { id: 32, name: 's2' });
    await em.flush();
    expect(statements(/prepare transaction/)).toHaveLength(2);
    expect(await prepared()).toEqual([]);
  });

  it('a shard that fails to prepare rolls every shard back, prepared or not, and logs no decision', async () => {
    // A deferred foreign key is checked at PREPARE: a book on s2 whose author is not there.
    await connection('s2').execute('alter table book drop constraint book_author_id_foreign');
    await connection('s2').execute(
      'alter table book add constraint book_author_id_foreign foreign key (author_id) references author (id) deferrable initially deferred',
    );
    try {
      const before = { authors: await committedRows(orm, 'author'), books: await committedRows(orm, 'book') };
      const thrown = await orm.em
        .fork()
        .transactional(async tx => {
          tx.create(Author, { id: 40, name: 's1' }, { shard: 's1' });
          tx.create(Book, { id: 41, title: 'orphan', author: tx.getReference(Author, 999, { shard: 's2' }) }, { shard: 's2' });
        })
        .catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(ForeignKeyConstraintViolationException);
      expect(shardFailureOf(thrown)).toMatchObject({ operation: 'transaction', shard: 's2', done: [] });
      expect(await committedRows(orm, 'author')).toEqual(before.authors);
      expect(await committedRows(orm, 'book')).toEqual(before.books);
      expect(await prepared()).toEqual([]);
      expect(await logged()).toEqual([]);
    } finally {
      await connection('s2').execute('alter table book drop constraint book_author_id_foreign');
      await connection('s2').execute('alter table book add constraint book_author_id_foreign foreign key (author_id) references author (id)');
    }
  });

  it('what a subscriber writes before the commit lands in the prepared transaction; after PREPARE a shard flushes nothing', async () => {
    const before = await committedRows(orm, 'author');
    const audit: EventSubscriber = {
      async beforeTransactionCommit({ em }: TransactionEventArgs) {
        if (em.config.get('contextName') === 's1' && !(await em.findOne(Author, 301))) {
          em.create(Author, { id: 301, name: 'written by a subscriber' });
          await em.flush();
        }
      },
    };
    for (const id of orm.shardIds) orm.shard(id).em.getEventManager().registerSubscriber(audit);
    await orm.em.fork().transactional(async tx => {
      tx.create(Author, { id: 52, name: 's1' }, { shard: 's1' });
      tx.create(Author, { id: 53, name: 's2' }, { shard: 's2' });
    });
    expect(await committedRows(orm, 'author')).toEqual({ ...before, s1: before.s1! + 2, s2: before.s2! + 1 });
    const sequence = statements(/\(shard s1\) (insert|prepare)/).map(line => line.split(' ')[2]);
    expect(sequence).toEqual(['insert', 'insert', 'prepare']);

    const fork = orm.shard('s1').em.fork();
    seal(fork);
    fork.create(Author, { id: 54, name: 'after prepare' });
    await expect(fork.flush()).rejects.toMatchObject({ code: 'TRANSACTION_CLOSED' });
    unseal(fork);
    expect(await committedRows(orm, 'author')).toEqual({ ...before, s1: before.s1! + 2, s2: before.s2! + 1 });
  });
});

describe('recover()', () => {
  it("commits what the log decided, rolls back the rest, and leaves other coordinators' prepared transactions alone", async () => {
    const before = await committedRows(orm, 'author');
    const decided = 'a'.repeat(32);
    const undecided = 'b'.repeat(32);
    await connection('s0').execute(`insert into "${logTable}" (txid, coordinator, shards) values (?, ?, ?)`, [decided, coordinatorId, '["s1","s2"]']);
    await prepareOn('s1', `mos:${coordinatorId}:${decided}:s1`, `insert into author (id, name) values (61, 'decided')`);
    await prepareOn('s2', `mos:${coordinatorId}:${decided}:s2`, `insert into author (id, name) values (62, 'decided')`);
    await prepareOn('s1', `mos:${coordinatorId}:${undecided}:s1`, `insert into author (id, name) values (64, 'undecided')`);
    await prepareOn('s2', `mos:${coordinatorId}:${undecided}:s2`, `insert into author (id, name) values (65, 'undecided')`);
    const foreign = [`mos:${coordinatorId}x:${undecided}:s1`, `other-app:${coordinatorId}:s1`];
    await prepareOn('s1', foreign[0]!, `insert into author (id, name) values (67, 'another coordinator')`);
    await prepareOn('s1', foreign[1]!, `insert into author (id, name) values (70, 'another application')`);
    try {
      const report = await orm.recover();
      expect([...report.committed].sort()).toEqual([`mos:${coordinatorId}:${decided}:s1`, `mos:${coordinatorId}:${decided}:s2`]);
      expect([...report.rolledBack].sort()).toEqual([`mos:${coordinatorId}:${undecided}:s1`, `mos:${coordinatorId}:${undecided}:s2`]);
      expect(report.failed).toEqual([]);
      expect(await committedRows(orm, 'author')).toEqual({ ...before, s1: before.s1! + 1, s2: before.s2! + 1 });
      expect(await prepared()).toEqual([]);
      expect(await logged()).toEqual([]);
      const left: { gid: string }[] = await connection('s1').execute('select gid from pg_prepared_xacts where gid in (?, ?)', foreign);
      expect(left.map(row => row.gid).sort()).toEqual([...foreign].sort());
    } finally {
      for (const gid of foreign) await connection('s1').execute(`rollback prepared '${gid}'`);
    }
  });

  it('from two processes at once resolves each prepared transaction once, without errors', async () => {
    await using other = await ShardedMikroORM.init(options({ debug: false, twoPhaseCommit: { coordinatorId, logShard: 's0', recoverOnInit: false } }));
    const gids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const txid = `${i}`.repeat(32);
      for (const shard of ['s1', 's2']) {
        const gid = `mos:${coordinatorId}:${txid}:${shard}`;
        gids.push(gid);
        await prepareOn(shard, gid, `insert into author (id, name) values (${1000 + i * 10 + Number(shard[1])}, 'in doubt')`);
      }
      if (i % 2 === 0) {
        await connection('s0').execute(`insert into "${logTable}" (txid, coordinator, shards) values (?, ?, ?)`, [txid, coordinatorId, '["s1","s2"]']);
      }
    }
    const reports = await Promise.all([orm.recover(), other.recover(), orm.recover()]);
    const resolved = reports.flatMap(report => [...report.committed, ...report.rolledBack]);
    expect(resolved.sort()).toEqual(gids.sort());
    expect(reports.flatMap(report => report.failed)).toEqual([]);
    expect(await prepared()).toEqual([]);
    expect(await logged()).toEqual([]);
    expect(await orm.em.fork().count(Author, { id: { $gte: 1000, $lt: 1100 } })).toBe(6);
  });

  it('running beside live two-phase commits, never breaks one: every transfer is all or nothing', async () => {
    await using other = await ShardedMikroORM.init(options({ debug: false, twoPhaseCommit: { coordinatorId, logShard: 's0', recoverOnInit: false } }));
    const em = orm.em.fork();
    // Pairs of accounts on two shards each (ids n and n + 1), so that transfers never wait for each other's locks.
    for (let id = 2000; id < 2024; id++) em.create(Author, { id, name: 'account', born: 100 });
    await em.flush();
    let recovering = true;
    const recoveries = (async () => {
      let runs = 0;
      while (recovering || runs === 0) {
        const report = await other.recover();
        expect(report.failed).toEqual([]);
        runs++;
      }
      return runs;
    })();
    const transfer = (pair: number, amount: number) =>
      orm.em.fork().transactional(async tx => {
        const from = await tx.findOneOrFail(Author, 2000 + 2 * pair);
        const to = await tx.findOneOrFail(Author, 2001 + 2 * pair);
        from.born! -= amount;
        to.born! += amount;
      });
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 12 }, (_, pair) => transfer(pair, round + 1)));
    }
    recovering = false;
    expect(await recoveries).toBeGreaterThan(0);
    const accounts = await orm.em.fork().find(Author, { id: { $gte: 2000, $lt: 2024 } }, { orderBy: { id: 'asc' } });
    expect(accounts.map(account => account.born)).toEqual(Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? 94 : 106)));
    expect(await prepared()).toEqual([]);
    expect(await logged()).toEqual([]);
  });

  it("leaves the coordinator log out of MikroORM's schema management: orm.schema.update() keeps it", async () => {
    await orm.schema.update();
    const [row] = await connection('s0').execute(`select to_regclass('${logTable}') as name`);
    expect(row?.name).toBe(logTable);
    expect(await orm.shard('s0').schema.getUpdateSchemaSQL()).toBe('');
  });

  it('init() runs it', async () => {
    const txid = 'c'.repeat(32);
    await prepareOn('s2', `mos:${coordinatorId}:${txid}:s2`, `insert into author (id, name) values (80, 'rolled back by init')`);
    await using again = await ShardedMikroORM.init(options({ debug: false }));
    expect(await prepared()).toEqual([]);
    expect(await again.em.fork().findOne(Author, 80)).toBeNull();
  });
});

describe('fleets and servers that cannot commit in two phases', () => {
  it('a SQLite fleet, or one mixing drivers, is refused at init (TWO_PHASE_UNAVAILABLE), naming the shard', async () => {
    const sqlite = sqliteTopology();
    try {
      const onSqlite = await ShardedMikroORM.init({ ...options(), ...sqlite.shared, shards: sqlite.shards(2) }).catch((error: unknown) => error);
      expect(onSqlite).toMatchObject({ code: 'TWO_PHASE_UNAVAILABLE', shard: 's0' });
      expect((onSqlite as Error).message).toMatch(/shard "s0" is SQLite; `twoPhaseCommit` needs PostgreSQL/);
      const mixed = await ShardedMikroORM.init({
        ...options(),
        shards: { s0: topology.database('s0'), s1: { ...sqlite.database('s1'), driver: SqliteDriver } } as ShardedMikroORMOptions['shards'],
      }).catch((error: unknown) => error);
      expect(mixed).toMatchObject({ code: 'TWO_PHASE_UNAVAILABLE', shard: 's1' });
      expect((mixed as Error).message).toMatch(/a fleet mixing drivers cannot commit in two phases/);
    } finally {
      await sqlite.dispose();
    }
  });

  it('a server with max_prepared_transactions = 0 is refused at init, naming the setting', { timeout: 60_000 }, async () => {
    await using server = await startPgInstance({ settings: { max_prepared_transactions: 0 } });
    const thrown = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      clientUrl: server.url,
      dbName: 'postgres',
      entities,
      shards: { s0: {}, s1: {} } as Record<string, object>,
      shardChooser: () => 's0',
      twoPhaseCommit: { coordinatorId, logShard: 's0' },
    }).catch((error: unknown) => error);
    expect(thrown).toMatchObject({ code: 'TWO_PHASE_UNAVAILABLE', shard: 's0' });
    expect((thrown as Error).message).toMatch(/max_prepared_transactions = 0.*Set max_prepared_transactions in postgresql\.conf/);
  });
});
