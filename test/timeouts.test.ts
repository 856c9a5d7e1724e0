import { SqliteDriver } from '@mikro-orm/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, shardFailureOf, type ShardOptions } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';
import { startSilentServer, type SilentServer } from './support/silent-server.ts';
import { postgresTopology, sqliteTopology, type Topology } from './support/topology.ts';

// A PostgreSQL shard that accepts TCP connections but never answers (a hung host, a black-holing proxy) used to
// hang init(), every query that reached it, and close(). Fault injection: a real loopback server that accepts and
// stays silent, next to real PostgreSQL shards. Its timeouts are short here; the defaults are 10 s and 60 s.

let silent: SilentServer;
let topology: Topology;
let shards: Record<string, ShardOptions>;

beforeAll(async () => {
  silent = await startSilentServer();
  topology = postgresTopology();
  shards = { s0: topology.database('s0'), s1: topology.database('s1') };
  // The databases, made once through a fleet without the silent shard.
  const setup = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards,
    shardChooser: ({ entity }) => `s${(entity as Author).id % 2}`,
    connect: false,
  });
  await setup.schema.ensureDatabase();
  await setup.schema.create();
  const em = setup.em.fork();
  em.create(Author, { id: 1, name: 'one' });
  em.create(Author, { id: 2, name: 'two' });
  await em.flush();
  await setup.close();
});

afterAll(async () => {
  await silent?.close();
  await topology?.dispose();
});

const silentShard = (connectionTimeoutMillis: number): ShardOptions => ({
  clientUrl: silent.url('nowhere'),
  driverOptions: { connectionTimeoutMillis },
});

/** What a call failed with (undefined if it succeeded). */
const failure = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (error: unknown) => error,
  );

/** The shard an error names: its `shard` field, else the first `shard "..."` of its message. */
function failedShard(error: unknown): string | undefined {
  return error instanceof ShardingError ? error.shard : shardFailureOf(error)?.shard;
}

async function open(hungAfter: number, connect = false): Promise<ShardedMikroORM> {
  return ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards: { ...shards, hung: silentShard(hungAfter) },
    shardChooser: () => 's0',
    connect,
  });
}

describe('a PostgreSQL shard that never answers', () => {
  it('fails init() by name, closing the shards that started', { timeout: 15_000 }, async () => {
    const error = await failure(open(200, true).then(orm => orm.close(true)));
    expect(error).toBeInstanceOf(ShardingError);
    expect(error).toMatchObject({ code: 'SHARD_INIT_FAILED', shard: 'hung' });
    expect(((error as ShardingError).cause as Error).message).toMatch(/timeout/);
  });

  it('fails a fan-out by name; the other shards keep answering; close() returns', { timeout: 15_000 }, async () => {
    const orm = await open(200);
    const fanOut = await failure(orm.em.fork().find(Author, {}, { orderBy: { id: 'asc' } }));
    expect(fanOut).toBeInstanceOf(Error);
    expect(failedShard(fanOut)).toBe('hung');
    expect(await orm.em.fork().count(Author, {}, { shard: 's1' })).toBe(1);
    await orm.close();
  });

  it('answers the other shards while a query to it waits', { timeout: 15_000 }, async () => {
    const orm = await open(1_000);
    let settled = false;
    const waiting = failure(orm.em.fork().count(Author, {}, { shard: 'hung' })).finally(() => (settled = true));
    const found = await orm.em.fork().find(Author, {}, { shard: 's0' });
    expect(found.map(author => author.id)).toEqual([2]);
    expect(settled).toBe(false);
    expect(String(((await waiting) as Error).message)).toMatch(/timeout/);
    await orm.close();
  });

  it('closes while a query to it still waits, and the query then fails', { timeout: 15_000 }, async () => {
    const orm = await open(1_000);
    const before = silent.accepted;
    const waiting = failure(orm.em.fork().count(Author, {}, { shard: 'hung' }));
    while (silent.accepted === before) {
      await new Promise(resolve => setTimeout(resolve, 5)); // until the query is connecting to the silent shard
    }
    await orm.close();
    expect(await waiting).toBeInstanceOf(Error);
  });
});

describe('default timeouts', () => {
  let lite: Topology;
  beforeAll(() => {
    lite = sqliteTopology();
  });
  afterAll(() => lite?.dispose());

  it('every PostgreSQL shard connects and runs statements with timeouts, which a shard may change; SQLite shards get none', async () => {
    await using orm = await ShardedMikroORM.init({
      entities,
      shards: {
        s0: { ...topology.shared, ...shards.s0 },
        s1: { ...topology.shared, ...shards.s1, driverOptions: { statement_timeout: 0 } },
        lite: { driver: SqliteDriver, ...lite.database('lite') },
      },
      shardChooser: () => 's0',
    });
    // `onPoolCreated` gates each shard's pool by its circuit breaker (docs/failure.md).
    const hook = { onPoolCreated: expect.any(Function) };
    expect(orm.shard('s0').config.get('driverOptions')).toEqual({ connectionTimeoutMillis: 10_000, statement_timeout: 60_000, ...hook });
    expect(orm.shard('s1').config.get('driverOptions')).toEqual({ connectionTimeoutMillis: 10_000, statement_timeout: 0, ...hook });
    expect(orm.shard('lite').config.get('driverOptions')).not.toHaveProperty('connectionTimeoutMillis');
    const setting = async (shard: 's0' | 's1') => (await orm.shard(shard).em.fork().getConnection().execute('show statement_timeout'))[0].statement_timeout;
    expect([await setting('s0'), await setting('s1')]).toEqual(['1min', '0']);
  });
});
