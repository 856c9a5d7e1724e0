import type { MaybePromise, ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { canonicalKey } from './canonical-key.ts';
import { checkDirectoryShard, insertMissing, readEntry } from './directory-table.ts';
import { hash } from './hash.ts';
import { LruCache } from './lru.ts';
import { PerFleet } from './per-fleet.ts';
import { checkShardList } from './shard-list.ts';
import type { ShardStrategy, StrategyContext } from './strategy.ts';

/** Options of {@link directory}. */
export interface DirectoryOptions {
  /** The shard whose `shard_directory` table keeps the directory (it must declare `ShardDirectoryEntry`). */
  readonly shard: ShardId;
  /** The shards keys may be placed on (checked at `init()`, and where `fallback` spreads new keys by default). */
  readonly shards: readonly ShardId[];
  /**
   * Where a NEW key goes when nothing asks for a shard (`{ shard }` or a hand-written chooser's answer do): its
   * answer is recorded, and the key stays there.
   * @default hash({ shards })
   */
  readonly fallback?: ShardStrategy;
  /**
   * The directory's name in the table: strategies with the same name (Tenant and Invoice by `tenantId`) share it.
   * @default 'default'
   */
  readonly name?: string;
  /**
   * How many keys each fleet keeps in memory; the least recently used are read again from the table when needed.
   * @default 10000
   */
  readonly cacheSize?: number;
}

/** A directory strategy. */
export interface DirectoryStrategy extends ShardStrategy {
  readonly kind: 'directory';
  readonly shards: readonly ShardId[];
  /**
   * Records a key's shard, as a new key placed there would (an administrator's placement before any row is
   * written). A key already in the directory keeps its shard: resolves to the shard that holds it.
   */
  assign(orm: ShardedMikroORM, key: unknown, shard: ShardId): Promise<ShardId>;
  /** Forgets cached entries (one key, or all) in this process, so that the next use reads the table. */
  forget(orm: ShardedMikroORM, key?: unknown): void;
  checkFleet(orm: ShardedMikroORM, owner: string): void;
}

interface Cache {
  readonly entries: LruCache<string, ShardId>;
  /** Reads under way by key: a burst of lookups for one key reads the table once. */
  readonly reading: Map<string, Promise<ShardId | undefined>>;
}

/**
 * An explicit key -> shard map kept in a table (`shard_directory`) on one shard: lookup sharding. A key's shard is
 * whatever its entry says, so a tenant can be put on a shard of its own. A new key gets its shard when its first
 * row is written: `{ shard }` or a hand-written chooser's answer if given, else `fallback`'s, and it is recorded
 * there (first writer wins across processes). Entries are cached per fleet in a bounded LRU.
 *
 * A query whose key has no entry reads every shard (a row could have been written before its entry).
 *
 * @example
 * ```ts
 * const tenants = directory({ shard: 'main', shards: ['t0', 't1', 't2'] });
 * shardBy: { Invoice: { key: 'tenantId', strategy: tenants } }
 * ```
 */
export function directory(options: DirectoryOptions): DirectoryStrategy {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions("directory() takes an options object: directory({ shard: 'main', shards: [...] }).", options);
  }
  checkShardList('directory()', options.shards);
  const { shard: home, shards, name = 'default', cacheSize = 10_000 } = options;
  if (typeof home !== 'string' || home === '') {
    throw ShardingError.invalidOptions(`directory() needs \`shard\`: the shard that keeps the directory table; got ${describe(home)}.`, home);
  }
  if (!Number.isInteger(cacheSize) || cacheSize < 1) {
    throw ShardingError.invalidOptions(`directory() needs \`cacheSize\` to be a whole number >= 1; got ${describe(cacheSize)}.`, cacheSize);
  }
  const fallback = options.fallback ?? hash({ shards });
  const caches = new PerFleet<Cache>(() => ({ entries: new LruCache(cacheSize), reading: new Map() }));

  const lookup = (orm: ShardedMikroORM, key: string): MaybePromise<ShardId | undefined> => {
    const cache = caches.of(orm);
    const cached = cache.entries.get(key);
    if (cached !== undefined) {
      return cached;
    }
    let reading = cache.reading.get(key);
    if (!reading) {
      reading = readEntry(orm, home, name, key).then(
        shard => {
          cache.reading.delete(key);
          if (shard !== undefined) {
            cache.entries.set(key, shard);
          }
          return shard;
        },
        (error: unknown) => {
          cache.reading.delete(key);
          throw error;
        },
      );
      cache.reading.set(key, reading);
    }
    return reading;
  };

  const record = async (orm: ShardedMikroORM, key: string, shard: ShardId): Promise<ShardId> => {
    await insertMissing(orm, home, name, new Map([[key, shard]]));
    // Another process may have recorded the key first: its entry stands.
    caches.of(orm).entries.delete(key);
    return (await lookup(orm, key))!;
  };

  const placeNew = async (key: unknown, text: string, context: StrategyContext, requested: ShardId | undefined): Promise<ShardId | undefined> => {
    const known = await lookup(context.orm, text);
    if (known !== undefined) {
      return known;
    }
    const chosen = requested ?? (await (fallback.place ?? fallback.shardFor).call(fallback, key, context));
    return chosen === undefined ? undefined : record(context.orm, text, chosen);
  };

  return {
    kind: 'directory',
    shards,
    shardFor(key, context) {
      const text = canonicalKey(key);
      return text === undefined ? undefined : lookup(context.orm, text);
    },
    place(key, context, requested) {
      const text = canonicalKey(key);
      if (text === undefined) {
        return undefined;
      }
      const cached = caches.of(context.orm).entries.get(text);
      return cached ?? placeNew(key, text, context, requested);
    },
    async assign(orm, key, shard) {
      const text = canonicalKey(key);
      if (text === undefined) {
        throw ShardingError.invalidShardKey('directory.assign()', '', key, 'a directory takes numbers, bigints, strings, dates and booleans');
      }
      if (!orm.fleet.has(shard)) {
        throw ShardingError.unknownShard(shard, orm.shardIds, { source: 'directory.assign()' });
      }
      return record(orm, text, shard);
    },
    forget(orm, key) {
      const cache = caches.of(orm);
      if (key === undefined) {
        cache.entries.clear();
        return;
      }
      const text = canonicalKey(key);
      if (text !== undefined) {
        cache.entries.delete(text);
      }
    },
    checkFleet(orm, owner) {
      checkDirectoryShard(orm, home, owner);
      fallback.checkFleet?.(orm, owner);
    },
  };
}
