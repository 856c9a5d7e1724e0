import type { MaybePromise, ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { evenDirectory, tableDirectory, type BucketDirectory, type BucketTableOptions } from './bucket-directory.ts';
import { hashKey } from './canonical-key.ts';
import { checkShardList } from './shard-list.ts';
import type { BucketedStrategy, StrategyContext } from './strategy.ts';

/** Options of {@link hash}. */
export interface HashOptions {
  /**
   * The shards the buckets are spread over, evenly, in this order (bucket `b` on `shards[b % shards.length]`).
   * With a `directory` table this is only the table's first spread.
   *
   * @example
   * ```ts
   * hash({ shards: ['s0', 's1', 's2', 's3'] })
   * ```
   */
  readonly shards: readonly ShardId[];
  /**
   * How many virtual buckets keys hash into. More buckets spread more evenly and move in finer steps; the count is
   * fixed once rows are written (a key's bucket never changes, its bucket's shard may).
   * @default 1024
   */
  readonly buckets?: number;
  /**
   * Keep the bucket -> shard directory in a table (`shard_directory`) on this shard, so that buckets can be moved to
   * other shards later (`strategy.directory.moveBuckets()`). Without it the even spread is computed, and changing
   * `shards` would move most keys.
   * @default the even spread, computed
   *
   * @example
   * ```ts
   * hash({ shards: ['s0', 's1'], directory: { shard: 's0' } })
   * ```
   */
  readonly directory?: BucketTableOptions;
  /**
   * MurmurHash3's seed.
   * @default 0
   */
  readonly seed?: number;
}

/** A hash strategy: MurmurHash3 of the key's canonical text -> a bucket -> the bucket's shard. */
export interface HashStrategy extends BucketedStrategy {
  readonly kind: 'hash';
  readonly shards: readonly ShardId[];
  /** Where the buckets live (the even spread, or a table). */
  readonly directory: BucketDirectory;
  checkFleet(orm: ShardedMikroORM, owner: string): void;
}

/**
 * Spreads keys evenly: MurmurHash3 (x86, 32 bits) of the key's canonical text (see `canonicalKey`) modulo
 * `buckets` gives the key's bucket, and the bucket directory gives the bucket's shard. A key's bucket never changes;
 * with a directory table, buckets (not keys) can move to another shard.
 *
 * With `buckets` equal to the number of shards it is the plain `murmurhash3(key) % shards` routing.
 *
 * @example
 * ```ts
 * shardBy: { Author: { key: 'id', strategy: hash({ shards: ['s0', 's1', 's2', 's3'] }) } }
 * ```
 */
export function hash(options: HashOptions): HashStrategy {
  const { shards, buckets = 1024, seed = 0 } = checkHashOptions(options);
  const directory = options.directory === undefined ? evenDirectory(shards, buckets) : tableDirectory(options.directory, shards, buckets);
  const bucketOrNothing = (key: unknown): number | undefined => {
    const hashed = hashKey(key, seed);
    return hashed === undefined ? undefined : hashed % buckets;
  };
  return {
    kind: 'hash',
    shards,
    buckets,
    directory,
    bucketOf(key: unknown, context?: StrategyContext): number {
      const bucket = bucketOrNothing(key);
      if (bucket === undefined) {
        throw ShardingError.invalidShardKey(context?.entityName ?? 'A row', '(given to bucketOf())', key, HASHABLE);
      }
      return bucket;
    },
    shardForBucket: (bucket, context) => directory.shardOf(bucket, context),
    shardFor(key: unknown, context: StrategyContext): MaybePromise<ShardId | undefined> {
      const bucket = bucketOrNothing(key);
      return bucket === undefined ? undefined : directory.shardOf(bucket, context);
    },
    checkFleet: (orm, owner) => directory.checkFleet(orm, owner),
  };
}

export const HASHABLE = 'a hash strategy takes numbers, bigints, strings, dates and booleans';

function checkHashOptions(options: HashOptions): HashOptions {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions('hash() takes an options object: hash({ shards: [...] }).', options);
  }
  checkShardList('hash()', options.shards);
  const { buckets = 1024, seed = 0 } = options;
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 2 ** 31) {
    throw ShardingError.invalidOptions(`hash() needs \`buckets\` to be a whole number from 1 to 2^31; got ${describe(buckets)}.`, buckets);
  }
  if (!Number.isInteger(seed) || seed < 0) {
    throw ShardingError.invalidOptions(`hash() needs \`seed\` to be a whole number >= 0; got ${describe(seed)}.`, seed);
  }
  return options;
}
