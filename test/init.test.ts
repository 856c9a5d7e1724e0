import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';

const dir = mkdtempSync(join(tmpdir(), 'mikro-shard-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valid = (): ShardedMikroORMOptions => ({
  driver: SqliteDriver,
  entities,
  shards: { a: { dbName: join(dir, 'a.db') }, b: { dbName: join(dir, 'b.db') } },
  shardChooser: () => 'a',
});

async function initError(options: unknown): Promise<ShardingError> {
  const error = await ShardedMikroORM.init(options as ShardedMikroORMOptions).then(
    orm => orm.close().then(() => undefined),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ShardingError);
  return error as ShardingError;
}

describe('ShardedMikroORM.init validates its options', () => {
  it('rejects no shards', async () => {
    // `shards: {}` is a registry filled at runtime (docs/registry.md).
    const empty = await ShardedMikroORM.init({ ...valid(), shards: {} } as ShardedMikroORMOptions);
    expect(empty.shardIds).toEqual([]);
    await empty.close();
    expect((await initError({ ...valid(), shards: undefined })).code).toBe('NO_SHARDS');
  });

  it('rejects a missing shard chooser', async () => {
    const error = await initError({ ...valid(), shardChooser: undefined });
    expect(error.code).toBe('MISSING_CHOOSER');
    expect(error.message).toMatch(/shardChooser/);
  });

  it('rejects choosers that are not functions', async () => {
    expect((await initError({ ...valid(), queryChooser: ['a'] })).code).toBe('INVALID_OPTIONS');
  });

  it('rejects a missing or non-SQL driver, naming the shard', async () => {
    const missing = await initError({ ...valid(), driver: undefined });
    expect([missing.code, missing.shard]).toEqual(['UNSUPPORTED_DRIVER', 'a']);
    expect(missing.message).toContain('Shard "a" has no `driver`, which is not a MikroORM SQL driver.');
    class NotADriver {}
    const wrong = await initError({ ...valid(), shards: { a: { dbName: join(dir, 'a.db') }, b: { driver: NotADriver } } });
    expect([wrong.code, wrong.shard]).toEqual(['UNSUPPORTED_DRIVER', 'b']);
    expect(wrong.message).toMatch(/NotADriver/);
  });

  it('reports the shard that failed to start, and closes the others', async () => {
    writeFileSync(join(dir, 'not-a-dir'), '');
    const error = await initError({ ...valid(), shards: { a: { dbName: join(dir, 'ok.db') }, b: { dbName: join(dir, 'not-a-dir', 'b.db') } } });
    expect([error.code, error.shard]).toEqual(['SHARD_INIT_FAILED', 'b']);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('forces contextName to the shard id and exposes the fleet', async () => {
    await using orm = await ShardedMikroORM.init({ ...valid(), contextName: 'ignored' });
    expect(orm.shardIds).toEqual(['a', 'b']);
    expect(orm.shard('b').config.get('contextName')).toBe('b');
    expect(() => orm.shard('c')).toThrow(expect.objectContaining({ code: 'UNKNOWN_SHARD' }));
    expect(await orm.isConnected()).toBe(true);
  });

  it('closes every shard on close() and on await using', async () => {
    let kept: ShardedMikroORM | undefined;
    {
      await using orm = await ShardedMikroORM.init(valid());
      await orm.schema.create();
      kept = orm;
    }
    expect(await kept.isConnected()).toBe(false);
  });

  it('runs schema operations on every shard', async () => {
    await using orm = await ShardedMikroORM.init(valid());
    await orm.schema.refresh();
    const sql = await orm.schema.getCreateSchemaSQL();
    expect([...sql.keys()]).toEqual(['a', 'b']);
    for (const id of orm.shardIds) {
      await orm.shard(id).em.fork().insert(Author, { id: 1, name: id });
    }
    await orm.schema.clear();
    for (const id of orm.shardIds) {
      expect(await orm.shard(id).em.fork().count(Author)).toBe(0);
    }
  });
});
