import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import type { ShardOptions } from '../options.ts';

/** Options of {@link createTestShards}. */
export interface CreateTestShardsOptions {
  /** `sqlite`: one file per shard in a fresh temp folder; `postgresql`: one fresh database per shard, on one server. */
  readonly driver: 'sqlite' | 'postgresql';
  /**
   * How many shards, named `s0`, `s1`, ...
   * @default 2
   */
  readonly count?: number;
  /** The shard ids, instead of `count`. */
  readonly ids?: readonly ShardId[];
  /**
   * The PostgreSQL server, as MikroORM's `clientUrl` (without a database name).
   * @default MikroORM's: postgresql://postgres@127.0.0.1:5432
   */
  readonly clientUrl?: string;
  /**
   * The start of the temp folder's or the databases' names; the rest is unique per call (process, time, counter).
   * Letters, digits, `_` and `-`, at most 30 characters.
   * @default 'mos_test'
   */
  readonly prefix?: string;
}

/** Fresh shards for a test: spread `options` into `ShardedMikroORM.init()`; dispose to remove them. */
export interface TestShards extends AsyncDisposable {
  /** The driver, the server (PostgreSQL) and the shards, to spread into `ShardedMikroORM.init()`. */
  readonly options: { readonly driver: ShardOptions['driver']; readonly clientUrl?: string; readonly shards: Record<ShardId, ShardOptions> };
  /** The shard ids, in order. */
  readonly shardIds: readonly ShardId[];
  /** Removes the databases: drops them on PostgreSQL (closing their connections), deletes the folder on SQLite. Safe to call twice. */
  dispose(): Promise<void>;
}

let made = 0;
const PREFIX = /^[A-Za-z0-9_-]{1,30}$/;

/**
 * Makes fresh, empty shards for a test and says how to remove them: temp SQLite files, or PostgreSQL databases with
 * unique names (created here, so a test that runs `orm.schema.create()` finds them). Close the fleet before the
 * shards are disposed; `await using` does both in the right order when the fleet is declared after the shards.
 *
 * @example
 * ```ts
 * await using shards = await createTestShards({ driver: 'sqlite', count: 4 });
 * await using orm = await ShardedMikroORM.init({ ...shards.options, entities: [Author], shardChooser });
 * ```
 */
export async function createTestShards(options: CreateTestShardsOptions): Promise<TestShards> {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions("createTestShards() takes an options object: createTestShards({ driver: 'sqlite', count: 2 }).", options);
  }
  const ids = shardIdsOf(options);
  const prefix = options.prefix ?? 'mos_test';
  // The prefix becomes a folder name and a quoted SQL identifier: nothing that leaves the temp folder or the quotes.
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw ShardingError.invalidOptions(`\`prefix\` of createTestShards() must be 1 to 30 letters, digits, '_' or '-'; got ${describe(prefix)}.`, prefix);
  }
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${made++}`;
  if (options.driver === 'sqlite') {
    const { SqliteDriver } = await import('@mikro-orm/sqlite');
    const dir = mkdtempSync(join(tmpdir(), `${name}-`));
    const shards = Object.fromEntries(ids.map(id => [id, { dbName: join(dir, `${id}.db`) }]));
    return testShards({ driver: SqliteDriver, shards }, ids, async () => rmSync(dir, { recursive: true, force: true }));
  }
  if (options.driver === 'postgresql') {
    const { PostgreSqlDriver } = await import('@mikro-orm/postgresql');
    const server = options.clientUrl === undefined ? {} : { clientUrl: options.clientUrl };
    const names = ids.map((_, i) => `${name}_${i}`);
    const created: string[] = [];
    const onServer = async (sql: (db: string) => string, dbs: readonly string[]) => {
      const admin = await MikroORM.init({ driver: PostgreSqlDriver, ...server, dbName: 'postgres', entities: [], discovery: { warnWhenNoEntities: false } });
      try {
        for (const db of dbs) {
          await admin.em.getConnection().execute(sql(db));
          created.push(db);
        }
      } finally {
        await admin.close(true);
      }
    };
    const drop = () => onServer(db => `drop database if exists "${db}" with (force)`, created.splice(0));
    try {
      await onServer(db => `create database "${db}"`, names);
    } catch (error) {
      await drop().catch(() => undefined);
      throw error;
    }
    const shards = Object.fromEntries(ids.map((id, i) => [id, { dbName: names[i]! }]));
    return testShards({ driver: PostgreSqlDriver, ...server, shards }, ids, drop);
  }
  throw ShardingError.invalidOptions(`createTestShards() takes driver 'sqlite' or 'postgresql'; got ${JSON.stringify(options.driver)}.`, options.driver);
}

function shardIdsOf(options: CreateTestShardsOptions): ShardId[] {
  if (options.ids !== undefined) {
    if (!Array.isArray(options.ids) || options.ids.length === 0 || new Set(options.ids).size !== options.ids.length) {
      throw ShardingError.invalidOptions(`\`ids\` of createTestShards() must be distinct shard ids; got ${JSON.stringify(options.ids)}.`, options.ids);
    }
    // A SQLite shard's file is named after its id: an id must not reach outside the temp folder.
    const unsafe = options.ids.find(id => typeof id !== 'string' || id === '' || /[/\\]|^\.\.?$/.test(id));
    if (unsafe !== undefined) {
      throw ShardingError.invalidOptions(
        `\`ids\` of createTestShards() name files: ${describe(unsafe)} is not a shard id for one (no '/', '\\', '.' or '..').`,
        unsafe,
      );
    }
    return [...options.ids];
  }
  const count = options.count ?? 2;
  if (!Number.isInteger(count) || count < 1) {
    throw ShardingError.invalidOptions(`\`count\` of createTestShards() must be a whole number of at least 1; got ${String(count)}.`, count);
  }
  return Array.from({ length: count }, (_, i) => `s${i}`);
}

function testShards(shardOptions: TestShards['options'], ids: ShardId[], remove: () => Promise<void>): TestShards {
  let disposed: Promise<void> | undefined;
  const dispose = () => (disposed ??= remove());
  return { options: shardOptions, shardIds: ids, dispose, [Symbol.asyncDispose]: dispose };
}
