import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { hashKey } from './canonical-key.ts';
import { checkShardList } from './shard-list.ts';
import type { ShardStrategy, StrategyContext } from './strategy.ts';

/** Options of {@link jump}. */
export interface JumpOptions {
  /**
   * The shards, in a fixed order: add new shards at the END of the list. Going from n to n + 1 shards then moves
   * 1/(n + 1) of the keys, all to the new shard; removing or reordering shards moves far more.
   */
  readonly shards: readonly ShardId[];
  /**
   * MurmurHash3's seed.
   * @default 0
   */
  readonly seed?: number;
}

/** A jump consistent hash strategy. */
export interface JumpStrategy extends ShardStrategy {
  readonly kind: 'jump';
  readonly shards: readonly ShardId[];
  /** The shard of a key (synchronous: nothing is stored); undefined for a value without a canonical form. */
  shardFor(key: unknown, context?: StrategyContext): ShardId | undefined;
}

/**
 * Jump consistent hash (Lamping and Veach, 2014) of MurmurHash3 of the key's canonical text: stateless, no table,
 * and growing the shard list by one moves only the keys the new shard takes (1/(n + 1) of them). Shards can only be
 * added at the end; there are no buckets to move by hand.
 *
 * @example
 * ```ts
 * shardBy: { Event: { key: 'deviceId', strategy: jump({ shards: ['s0', 's1', 's2', 's3'] }) } }
 * ```
 */
export function jump(options: JumpOptions): JumpStrategy {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions('jump() takes an options object: jump({ shards: [...] }).', options);
  }
  checkShardList('jump()', options.shards);
  const { shards, seed = 0 } = options;
  if (!Number.isInteger(seed) || seed < 0) {
    throw ShardingError.invalidOptions(`jump() needs \`seed\` to be a whole number >= 0; got ${describe(seed)}.`, seed);
  }
  return {
    kind: 'jump',
    shards,
    shardFor(key) {
      const hashed = hashKey(key, seed);
      return hashed === undefined ? undefined : shards[jumpHash(hashed, shards.length)];
    },
  };
}

const MULTIPLIER = 2862933555777941757n;

/** The bucket (0 ... buckets - 1) of a key, as the paper's reference code computes it with 64-bit arithmetic. */
export function jumpHash(key: number, buckets: number): number {
  let state = BigInt(key);
  let bucket = -1;
  let next = 0;
  while (next < buckets) {
    bucket = next;
    state = BigInt.asUintN(64, state * MULTIPLIER + 1n);
    next = Math.floor((bucket + 1) * (2 ** 31 / (Number(state >> 33n) + 1)));
  }
  return bucket;
}
