// How many keys change shard when a fifth shard joins four, per strategy: the figures of docs/strategies.md
// ("What adding a shard moves"). Run: `pnpm exec node --conditions=@mikro-orm-sharding/source benchmarks/src/keys-moved.ts`.
import { evenSpread, hash, jump, rebalance, type ShardedMikroORM, type ShardStrategy, type StrategyContext } from 'mikro-orm-sharding';

export interface Moved {
  readonly strategy: string;
  /** Keys whose shard changed, of all keys. */
  readonly moved: number;
  readonly keys: number;
  /** Of the moved keys, how many went to the new shard. */
  readonly toNewShard: number;
  /** The largest and smallest shard after the change, as a share of all keys. */
  readonly largest: number;
  readonly smallest: number;
}

const context: StrategyContext = { orm: {} as ShardedMikroORM, entityName: 'Key' };
const before = ['s0', 's1', 's2', 's3'];
const after = [...before, 's4'];

/** A strategy that looks up a fixed bucket table, as hash() with `directory` does once it has read its table. */
function withBuckets(assignments: readonly string[]): ShardStrategy {
  const buckets = hash({ shards: before, buckets: assignments.length });
  return { kind: 'hash+directory', shardFor: key => assignments[buckets.bucketOf(key)] };
}

/** Keys 0 ... keys - 1, placed before and after adding `s4`, by each strategy. */
export function keysMoved(keys = 100_000): Moved[] {
  const table = evenSpread(before, 1024);
  const moved = [...table];
  for (const { bucket, to } of rebalance(table, after)) moved[bucket] = to;
  const cases: [string, ShardStrategy, ShardStrategy][] = [
    ['plain modulo: murmurhash3(key) % shards', hash({ shards: before, buckets: 4 }), hash({ shards: after, buckets: 5 })],
    ['hash, 1024 buckets, even spread recomputed', hash({ shards: before }), hash({ shards: after })],
    ['hash, 1024 buckets, directory table rebalanced', withBuckets(table), withBuckets(moved)],
    ['jump', jump({ shards: before }), jump({ shards: after })],
  ];
  return cases.map(([strategy, from, to]) => {
    let changed = 0;
    let toNewShard = 0;
    const sizes = new Map<string, number>(after.map(shard => [shard, 0]));
    for (let key = 0; key < keys; key++) {
      const a = from.shardFor(key, context) as string;
      const b = to.shardFor(key, context) as string;
      sizes.set(b, sizes.get(b)! + 1);
      if (a !== b) {
        changed++;
        if (b === 's4') toNewShard++;
      }
    }
    return { strategy, moved: changed, keys, toNewShard, largest: Math.max(...sizes.values()) / keys, smallest: Math.min(...sizes.values()) / keys };
  });
}

/** The table of docs/strategies.md. */
export function movedTable(rows: readonly Moved[]): string {
  const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
  const lines = rows.map(
    row => `| ${row.strategy} | ${pct(row.moved / row.keys)} | ${pct(row.toNewShard / Math.max(row.moved, 1))} | ${pct(row.smallest)} - ${pct(row.largest)} |`,
  );
  return ['| strategy | keys moved | of them to the new shard | shard sizes after |', '| --- | --- | --- | --- |', ...lines].join('\n');
}

if (import.meta.main) {
  process.stdout.write(`${movedTable(keysMoved())}\n`);
}
