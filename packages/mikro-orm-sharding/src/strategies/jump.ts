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

/**
 * The bucket (0 ... buckets - 1) of a key, as the paper's reference code computes it with 64-bit arithmetic; here the
 * 64-bit state is two 32-bit halves, multiplied in 16-bit pieces (a bigint per step cost ~0.4 us a step).
 */
export function jumpHash(key: number, buckets: number): number {
  let high = Math.floor(key / 2 ** 32) >>> 0;
  let low = key >>> 0;
  let bucket = -1;
  let next = 0;
  while (next < buckets) {
    bucket = next;
    // state = state * 2862933555777941757 + 1 (mod 2^64)
    const a48 = high >>> 16;
    const a32 = high & 0xffff;
    const a16 = low >>> 16;
    const a00 = low & 0xffff;
    let c00 = a00 * M00 + 1;
    let c16 = c00 >>> 16;
    c00 &= 0xffff;
    c16 += a16 * M00 + a00 * M16;
    let c32 = Math.floor(c16 / 0x10000);
    c16 &= 0xffff;
    c32 += a32 * M00 + a16 * M16 + a00 * M32;
    let c48 = Math.floor(c32 / 0x10000);
    c32 &= 0xffff;
    c48 = (c48 + a48 * M00 + a32 * M16 + a16 * M32 + a00 * M48) & 0xffff;
    low = ((c16 << 16) | c00) >>> 0;
    high = ((c48 << 16) | c32) >>> 0;
    next = Math.floor((bucket + 1) * (2 ** 31 / ((high >>> 1) + 1)));
  }
  return bucket;
}

// 2862933555777941757 = 0x27bb2ee687b0b0fd, in 16-bit pieces.
const M48 = 0x27bb;
const M32 = 0x2ee6;
const M16 = 0x87b0;
const M00 = 0xb0fd;
