import type { MaybePromise, ShardId } from '../choosers.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

/**
 * What a strategy is told besides the key: the fleet it routes for (a strategy object may serve several fleets, so
 * anything it keeps per fleet, such as a directory's cache, is kept per `orm`), and the entity whose key it is.
 */
export interface StrategyContext {
  /** The fleet being routed. */
  readonly orm: ShardedMikroORM;
  /** The entity whose shard key is routed (the class name), for messages. */
  readonly entityName: string;
}

/**
 * Bounds on a key from a query's condition (`{ createdAt: { $gte: from, $lt: to } }`), as given: a strategy that
 * orders its keys (`range`) names the shards the bounds overlap. Absent bounds are open.
 */
export interface KeyRange {
  readonly gt?: unknown;
  readonly gte?: unknown;
  readonly lt?: unknown;
  readonly lte?: unknown;
}

/**
 * Maps a shard-key value to the shard its rows live on: one small object with one job. The library calls it to
 * place new entities, to look primary keys up, and to prune queries to the shards that can hold their rows; it
 * never calls it with `null` or `undefined`.
 *
 * Write your own for a scheme the built-in ones (`hash`, `jump`, `range`, `directory`, `tenant`) do not cover: a
 * key that always goes to one shard, say. Answers are checked like a chooser's (`UNKNOWN_SHARD`,
 * `ENTITY_NOT_ON_SHARD`); a strategy may register the shard it answers with first (`context.orm.addShard()`).
 *
 * @example
 * ```ts
 * const byRegion: ShardStrategy = {
 *   kind: 'region',
 *   shards: ['eu', 'us'],
 *   shardFor: key => (String(key).startsWith('eu-') ? 'eu' : 'us'),
 * };
 * ```
 */
export interface ShardStrategy {
  /** A name for messages and `explain` (`'hash'`, `'range'`, ...). */
  readonly kind: string;
  /**
   * The shards this strategy may answer with, checked once at `init()` (each must be a shard that declares the
   * entity). Leave it out when the shards are only known at run time; answers are checked when they are given.
   */
  readonly shards?: readonly ShardId[];
  /**
   * The shard that holds the rows with this key, or `undefined` when the strategy cannot tell (a key a directory has
   * not seen): such a query reads every shard.
   */
  shardFor(key: unknown, context: StrategyContext): MaybePromise<ShardId | undefined>;
  /**
   * The shard a NEW row with this key is written to. `requested` is the shard the caller asked for (`{ shard }`, a
   * hand-written chooser), if any: a directory records it for a key it does not know yet; a computed strategy
   * ignores it (the library refuses a disagreement with `SHARD_KEY_MISMATCH`). Throw a `ShardingError`
   * (`ShardingError.invalidShardKey`) for a key it cannot place.
   * @default shardFor, which must then answer for every key
   */
  place?(key: unknown, context: StrategyContext, requested?: ShardId): MaybePromise<ShardId | undefined>;
  /**
   * The shards that can hold keys within the bounds, or `'all'` when the strategy cannot tell (a hash cannot). Only
   * a strategy that keeps ordered keys together implements it.
   * @default every shard
   */
  shardsForRange?(range: KeyRange, context: StrategyContext): MaybePromise<readonly ShardId[] | 'all'>;
  /**
   * Checks, once at `init()`, that the fleet can serve this strategy (a directory's shard declares its table, say);
   * throws a `ShardingError` when it cannot. `owner` names the declaration for the message (`shardBy.Author`).
   */
  checkFleet?(orm: ShardedMikroORM, owner: string): void;
}

/**
 * A strategy that first maps a key to one of a fixed number of virtual buckets, then a bucket to a shard. Ids that
 * carry their bucket (`IdGenerator`) are routed by it without hashing.
 */
export interface BucketedStrategy extends ShardStrategy {
  /** How many buckets there are. */
  readonly buckets: number;
  /** The bucket of a key: 0 ... `buckets - 1`. */
  bucketOf(key: unknown, context?: StrategyContext): number;
  /** The shard that holds a bucket. */
  shardForBucket(bucket: number, context: StrategyContext): MaybePromise<ShardId>;
}

/** Whether a strategy maps keys through buckets. */
export function isBucketed(strategy: ShardStrategy): strategy is BucketedStrategy {
  const candidate = strategy as Partial<BucketedStrategy>;
  return typeof candidate.buckets === 'number' && typeof candidate.bucketOf === 'function' && typeof candidate.shardForBucket === 'function';
}
