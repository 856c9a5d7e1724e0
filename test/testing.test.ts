/**
 * `mikro-orm-sharding/testing`: fresh shards per test run (`createTestShards`), and seed 004's per-connection
 * `sql_session_fixture` for a fleet (`rollbackScope`): each test works in a transaction on every shard that is
 * rolled back afterwards, as a vitest fixture (the example of docs/testing.md).
 * > 004: "When writing tests you will need to define an extra fixture for extra connections you create. This is
 * > easily done via the pyramid_sqlalchemy.fixtures.sql_session_fixture helper."
 */
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ShardedMikroORM, type ShardedEntityManager } from 'mikro-orm-sharding';
import { createTestShards, rollbackScope } from 'mikro-orm-sharding/testing';
import { afterAll, beforeAll, describe, expect, it, test as base } from 'vitest';
import { Author, Book, entities } from './support/entities.ts';
import { rowsPerShard, shardChooser } from './support/fleet.ts';
import { adminQuery, PG_URL } from './support/topology.ts';

async function databaseExists(name: string): Promise<boolean> {
  const [rows] = await adminQuery([['select 1 from pg_database where datname = ?', [name]]]);
  return rows!.length > 0;
}

describe('createTestShards', () => {
  it('makes SQLite shard files in a fresh folder, and removes the folder', async () => {
    let folder: string;
    {
      await using shards = await createTestShards({ driver: 'sqlite', count: 3 });
      expect(shards.shardIds).toEqual(['s0', 's1', 's2']);
      folder = dirname(shards.options.shards.s0!.dbName!);
      await using orm = await ShardedMikroORM.init({ ...shards.options, entities, shardChooser });
      await orm.schema.create();
      const em = orm.em.fork();
      em.create(Author, { id: 1, name: 'Ann' });
      await em.flush();
      expect(await rowsPerShard(orm, 'author')).toEqual({ s0: 0, s1: 1, s2: 0 });
      expect(existsSync(shards.options.shards.s1!.dbName!)).toBe(true);
    }
    expect(existsSync(folder)).toBe(false);
  });

  it('makes fresh PostgreSQL databases with unique names, and drops them even with connections open', async () => {
    const shards = await createTestShards({ driver: 'postgresql', ids: ['eu', 'us'], clientUrl: PG_URL, prefix: 'mos_fixture' });
    const names = Object.values(shards.options.shards).map(s => s.dbName!);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    for (const name of names) {
      expect(name).toMatch(/^mos_fixture_/);
      expect(await databaseExists(name)).toBe(true);
    }
    const other = await createTestShards({ driver: 'postgresql', ids: ['eu', 'us'], clientUrl: PG_URL, prefix: 'mos_fixture' });
    expect(Object.values(other.options.shards).map(s => s.dbName)).not.toEqual(names);
    await other.dispose();

    const orm = await ShardedMikroORM.init({ ...shards.options, entities, shardChooser: () => 'eu' });
    await orm.schema.create();
    await shards.dispose();
    await shards.dispose();
    for (const name of names) expect(await databaseExists(name)).toBe(false);
    await orm.close(true);
  });

  it('refuses a bad driver, count or ids', async () => {
    await expect(createTestShards({ driver: 'mysql' as 'sqlite' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(createTestShards({ driver: 'sqlite', count: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(createTestShards({ driver: 'sqlite', ids: ['a', 'a'] })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(createTestShards(null as unknown as { driver: 'sqlite' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });

  it('refuses a prefix or shard ids that would reach outside the temp folder, or out of the quoted database name', async () => {
    const outside = join(tmpdir(), '..', `mos_escape_${process.pid}`);
    for (const prefix of [`../${basename(outside)}`, 'a"; drop database postgres; --', '', 'x'.repeat(31)]) {
      await expect(createTestShards({ driver: 'sqlite', prefix })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringContaining('`prefix`'),
      });
    }
    await expect(createTestShards({ driver: 'postgresql', clientUrl: PG_URL, prefix: 'a"b' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    for (const id of ['../x', 'a/b', 'a\\b', '..']) {
      await expect(createTestShards({ driver: 'sqlite', ids: ['s0', id] })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', value: id });
    }
    expect(readdirSync(dirname(outside)).filter(name => name.startsWith(basename(outside)))).toEqual([]);
  });
});

describe.each(['sqlite', 'postgresql'] as const)('a test per transaction, rolled back on every shard (%s)', driver => {
  let shards: Awaited<ReturnType<typeof createTestShards>>;
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    shards = await createTestShards({ driver, count: 3, clientUrl: PG_URL });
    orm = await ShardedMikroORM.init({
      ...shards.options,
      entities,
      shardChooser,
      idChooser: ({ entityName, id }) => (entityName === 'Author' ? [`s${Number(id) % 3}`] : shards.shardIds),
    });
    await orm.schema.create();
    // Data every test sees, committed before the tests.
    const em = orm.em.fork();
    em.create(Author, { id: 3, name: 'Committed' });
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await shards?.dispose();
  });

  // The fixture of docs/testing.md: each test gets `em`, and all it wrote is rolled back after the test.
  const test = base.extend<{ em: ShardedEntityManager }>({
    // oxlint-disable-next-line no-empty-pattern -- vitest reads the fixtures a fixture needs from this pattern
    em: async ({}, use) => {
      await using scope = await rollbackScope(orm);
      await use(scope.em);
    },
  });

  test('writes on several shards and reads them back inside the test', async ({ em }) => {
    em.create(Author, { id: 1, name: 'Ann', books: [{ id: 10, title: 'A' }] });
    em.create(Author, { id: 2, name: 'Bob' });
    await em.flush();
    expect(await em.count(Author)).toBe(3);
    const found = await em.find(Author, {}, { orderBy: { id: 'asc' }, populate: ['books'] });
    expect(found.map(a => [a.id, a.books.length])).toEqual([
      [1, 1],
      [2, 0],
      [3, 0],
    ]);
    expect(em.shardOf(found[0]!)).toBe('s1');
  });

  test('sees none of what the previous test wrote', async ({ em }) => {
    expect(await em.count(Author)).toBe(1);
    expect(await em.count(Book)).toBe(0);
    em.create(Author, { id: 4, name: 'Cid' });
    await em.flush();
    const cid = await em.findOneOrFail(Author, 4);
    cid.name = 'Cid II';
    await em.flush();
    expect((await em.findOneOrFail(Author, 4)).name).toBe('Cid II');
  });

  it('leaves only the committed rows on every shard', async () => {
    expect(await rowsPerShard(orm, 'author')).toEqual({ s0: 1, s1: 0, s2: 0 });
    expect(await rowsPerShard(orm, 'book')).toEqual({ s0: 0, s1: 0, s2: 0 });
  });

  it('rolls back when the test fails, and rollback() twice is harmless', async () => {
    const scope = await rollbackScope(orm, { shards: ['s1', 's2'] });
    const failing = async () => {
      await using inner = scope;
      inner.em.create(Author, { id: 7, name: 'Eve' });
      await inner.em.flush();
      throw new Error('assertion failed');
    };
    await expect(failing()).rejects.toThrow('assertion failed');
    await scope.rollback();
    expect(await rowsPerShard(orm, 'author')).toEqual({ s0: 1, s1: 0, s2: 0 });
  });
});
