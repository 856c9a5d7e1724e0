import { readFileSync } from 'node:fs';
import murmurhash from 'murmurhash';
import { describe, expect, it } from 'vitest';
import { canonicalKey, evenSpread, hash, jump, range, rebalance, type ShardedMikroORM, type StrategyContext } from 'mikro-orm-sharding';
import { keysMoved, movedTable } from '../benchmarks/src/keys-moved.ts';
import { jumpHash } from '../packages/mikro-orm-sharding/src/strategies/jump.ts';
import { refusal } from './support/refusal.ts';

// The strategies as pure functions: what each maps a key to, what a query's bounds leave, and how many keys move
// when a shard is added. (Their use through shardBy, on real databases, is in shard-by.test.ts.)

/** A context for strategies that need no fleet (hash with the even spread, jump, range). */
const context = { orm: {} as ShardedMikroORM, entityName: 'Thing' } satisfies StrategyContext;
const four = ['s0', 's1', 's2', 's3'];

describe('canonicalKey', () => {
  it('writes every spelling of one key the same way, as a database compares them', () => {
    expect(canonicalKey(5)).toBe('5');
    expect(canonicalKey('5')).toBe('5');
    expect(canonicalKey(5n)).toBe('5');
    expect(canonicalKey(-0)).toBe('0');
    expect(canonicalKey(9_007_199_254_740_993n)).toBe('9007199254740993');
    expect(canonicalKey('2F1C0B4E-5A4D-4C7E-9E3B-6A1F2B3C4D5E')).toBe('2f1c0b4e-5a4d-4c7e-9e3b-6a1f2b3c4d5e');
    expect(canonicalKey('Tenant-A')).toBe('Tenant-A');
    expect(canonicalKey(new Date('2024-05-01T00:00:00Z'))).toBe('2024-05-01T00:00:00.000Z');
    expect(canonicalKey(true)).toBe('true');
  });

  it('has none for values no column holds', () => {
    for (const value of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY, {}, [1], new Date('nope'), Symbol('x')]) {
      expect(canonicalKey(value)).toBeUndefined();
    }
  });
});

describe('hash', () => {
  it('with as many buckets as shards is the plain murmurhash3(key) % shards routing', () => {
    const strategy = hash({ shards: four, buckets: 4 });
    for (let id = 0; id < 2000; id++) {
      expect(strategy.shardFor(id, context)).toBe(four[murmurhash.v3(String(id)) % 4]);
    }
  });

  it('maps a key to its bucket, and a bucket to the shard of the even spread', () => {
    const strategy = hash({ shards: four });
    expect(strategy.buckets).toBe(1024);
    for (const key of [1, 'acme', 123_456_789_012n, new Date(0)]) {
      const bucket = strategy.bucketOf(key);
      expect(bucket).toBe(murmurhash.v3(canonicalKey(key)!) % 1024);
      expect(strategy.shardFor(key, context)).toBe(four[bucket % 4]);
      expect(strategy.shardForBucket(bucket, context)).toBe(four[bucket % 4]);
    }
    // Non-ASCII text is hashed as UTF-8.
    expect(strategy.bucketOf('中文')).toBe(murmurhash.v3(new TextEncoder().encode('中文')) % 1024);
  });

  it('spreads keys evenly', () => {
    const strategy = hash({ shards: four });
    const counts = new Map<string, number>();
    for (let id = 0; id < 40_000; id++) {
      const shard = strategy.shardFor(`user-${id}`, context) as string;
      counts.set(shard, (counts.get(shard) ?? 0) + 1);
    }
    for (const shard of four) {
      expect(counts.get(shard)).toBeGreaterThan(9_000);
      expect(counts.get(shard)).toBeLessThan(11_000);
    }
  });

  it('has no shard for a value without a canonical form, and bucketOf refuses it', async () => {
    const strategy = hash({ shards: four });
    expect(strategy.shardFor({}, context)).toBeUndefined();
    expect((await refusal(() => strategy.bucketOf(null))).code).toBe('INVALID_SHARD_KEY');
  });

  it('refuses bad options', async () => {
    expect((await refusal(() => hash({ shards: [] }))).code).toBe('INVALID_OPTIONS');
    expect((await refusal(() => hash({ shards: ['s0', 's0'] }))).message).toMatch(/twice/);
    expect((await refusal(() => hash({ shards: four, buckets: 0 }))).message).toMatch(/buckets/);
  });
});

describe('jump', () => {
  it('matches the paper’s reference code', () => {
    // JumpConsistentHash(key, n) of Lamping and Veach's C++ code, compiled with gcc, for n = 1, 4, 5, 10, 1000.
    const expected: Record<number, number[]> = {
      0: [0, 0, 0, 0, 0],
      1: [0, 0, 0, 6, 549],
      2: [0, 3, 3, 6, 338],
      42: [0, 2, 2, 2, 571],
      123_456_789: [0, 0, 0, 7, 294],
      4_294_967_295: [0, 2, 2, 5, 875],
    };
    for (const [key, buckets] of Object.entries(expected)) {
      expect([1, 4, 5, 10, 1000].map(n => jumpHash(Number(key), n))).toEqual(buckets);
    }
    const strategy = jump({ shards: four });
    for (let id = 0; id < 100; id++) {
      expect(strategy.shardFor(id, context)).toBe(four[jumpHash(murmurhash.v3(String(id)), 4)]);
    }
  });

  it('moves only the keys the new shard takes when a shard is added at the end', () => {
    const before = jump({ shards: four });
    const after = jump({ shards: [...four, 's4'] });
    let moved = 0;
    for (let id = 0; id < 20_000; id++) {
      const from = before.shardFor(id, context);
      const to = after.shardFor(id, context);
      if (from !== to) {
        expect(to).toBe('s4');
        moved++;
      }
    }
    expect(moved / 20_000).toBeGreaterThan(0.18);
    expect(moved / 20_000).toBeLessThan(0.22);
  });
});

describe('range', () => {
  const byDay = range([{ shard: 'archive' }, { shard: 'y2024', from: new Date('2024-01-01') }, { shard: 'hot', from: new Date('2025-01-01') }]);

  it('places a key in the range that starts at or below it', () => {
    expect(byDay.shardFor(new Date('1999-12-31'), context)).toBe('archive');
    expect(byDay.shardFor(new Date('2024-01-01'), context)).toBe('y2024');
    expect(byDay.shardFor('2024-06-01T10:00:00Z', context)).toBe('y2024');
    expect(byDay.shardFor(new Date('2031-01-01'), context)).toBe('hot');
    expect(byDay.shardFor('not a date', context)).toBeUndefined();
  });

  it('names the shards whose ranges a query’s bounds overlap', () => {
    expect(byDay.shardsForRange!({ gte: new Date('2025-03-01') }, context)).toEqual(['hot']);
    expect(byDay.shardsForRange!({ lt: new Date('2024-01-01') }, context)).toEqual(['archive']);
    expect(byDay.shardsForRange!({ lte: new Date('2024-01-01') }, context)).toEqual(['archive', 'y2024']);
    expect(byDay.shardsForRange!({ gt: new Date('2023-06-01'), lt: new Date('2024-02-01') }, context)).toEqual(['archive', 'y2024']);
    expect(byDay.shardsForRange!({ gte: new Date('2024-01-01'), lt: new Date('2025-01-01') }, context)).toEqual(['y2024']);
    expect(byDay.shardsForRange!({ gte: 'garbage' }, context)).toBe('all');
  });

  it('takes numbers and bigints alike, and strings by code point', () => {
    const numbers = range([{ shard: 'low' }, { shard: 'mid', from: 1000 }, { shard: 'high', from: 2n ** 60n }]);
    expect(numbers.shardFor(999, context)).toBe('low');
    expect(numbers.shardFor(1000n, context)).toBe('mid');
    expect(numbers.shardFor('1152921504606846977', context)).toBe('high');
    expect(numbers.shardsForRange!({ gt: 1000, lt: 1001 }, context)).toEqual(['mid']);
    const names = range([{ shard: 'a-m' }, { shard: 'n-z', from: 'n' }, { shard: 'other', from: '\u{10000}' }]);
    expect(names.shardFor('Zed', context)).toBe('a-m');
    expect(names.shardFor('zed', context)).toBe('n-z');
    // '\uffff' is above 'n' and below U+10000 by code point (UTF-16 code units would say otherwise).
    expect(names.shardFor('\uffff', context)).toBe('n-z');
    expect(names.shardFor('😀', context)).toBe('other');
  });

  it('holds several ranges on one shard (hot and archive), and nothing below a closed first range', () => {
    const split = range([
      { shard: 'archive', from: 0 },
      { shard: 'hot', from: 100 },
      { shard: 'archive', from: 200 },
    ]);
    expect(split.shards).toEqual(['archive', 'hot']);
    expect(split.shardFor(150, context)).toBe('hot');
    expect(split.shardFor(250, context)).toBe('archive');
    expect(split.shardFor(-1, context)).toBeUndefined();
    expect(split.shardsForRange!({ gte: 120, lt: 180 }, context)).toEqual(['hot']);
  });

  it('refuses ranges that do not increase, mix kinds, or leave out a later start', async () => {
    expect((await refusal(() => range([]))).code).toBe('INVALID_OPTIONS');
    expect((await refusal(() => range([{ shard: 'a' }, { shard: 'b', from: 5 }, { shard: 'c', from: 5 }]))).message).toMatch(/increase/);
    expect(
      (
        await refusal(() =>
          range([
            { shard: 'a', from: 1 },
            { shard: 'b', from: 'x' },
          ]),
        )
      ).message,
    ).toMatch(/mixes/);
    expect((await refusal(() => range([{ shard: 'a', from: 1 }, { shard: 'b' }]))).message).toMatch(/only the first/);
  });
});

describe('rebalance', () => {
  it('moves the fewest buckets: going from 4 to 5 shards moves a fifth, all to the new shard', () => {
    const moves = rebalance(evenSpread(four, 1024), [...four, 's4']);
    expect(moves).toHaveLength(204);
    expect(new Set(moves.map(move => move.to))).toEqual(new Set(['s4']));
    const after = evenSpread(four, 1024);
    for (const { bucket, to } of moves) after[bucket] = to;
    const counts = [...four, 's4'].map(shard => after.filter(s => s === shard).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('empties a shard that is removed, and leaves a balanced directory alone', () => {
    const moves = rebalance(evenSpread(four, 1024), ['s0', 's1', 's2']);
    expect(moves.every(move => move.from === 's3')).toBe(true);
    expect(moves).toHaveLength(256);
    expect(rebalance(evenSpread(four, 1024), four)).toEqual([]);
  });
});

describe('what adding a shard moves (docs/strategies.md)', () => {
  const rows = keysMoved();

  it('is the table the page shows', () => {
    expect(readFileSync(new URL('../docs/strategies.md', import.meta.url), 'utf8')).toContain(movedTable(rows));
  });

  it('moves four keys in five with modulo, and a fifth, all to the new shard, with a bucket directory or jump', () => {
    const [modulo, recomputed, directory, jumped] = rows.map(row => row.moved / row.keys);
    expect(modulo).toBeGreaterThan(0.78);
    expect(recomputed).toBeGreaterThan(0.78);
    for (const share of [directory!, jumped!]) {
      expect(share).toBeGreaterThan(0.18);
      expect(share).toBeLessThan(0.22);
    }
    expect(rows[2]!.toNewShard).toBe(rows[2]!.moved);
    expect(rows[3]!.toNewShard).toBe(rows[3]!.moved);
  });
});
