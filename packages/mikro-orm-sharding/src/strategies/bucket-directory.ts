import type { MaybePromise, ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { checkDirectoryShard, insertMissing, readEntries, updateEntries } from './directory-table.ts';
import { PerFleet } from './per-fleet.ts';
import type { StrategyContext } from './strategy.ts';

/** Where a hash strategy's buckets live: the default even spread, or a table that can change. */
export interface BucketDirectory {
  readonly kind: 'even' | 'table';
  /** The shard that holds a bucket. */
  shardOf(bucket: number, context: StrategyContext): MaybePromise<ShardId>;
  /** The shard of every bucket (bucket `i` at index `i`), as the fleet sees it now (a table is read first if need be). */
  assignments(orm: ShardedMikroORM): Promise<readonly ShardId[]>;
  /**
   * Points buckets at another shard, in the table and in this process (table directories only). Move the buckets'
   * rows first: from then on, keys of these buckets are looked for on `shard` only. Other processes see it after
   * `reload()`.
   */
  moveBuckets(orm: ShardedMikroORM, buckets: readonly number[], shard: ShardId): Promise<void>;
  /** Reads the table again (table directories; a no-op for the even spread). */
  reload(orm: ShardedMikroORM): Promise<void>;
  /** Checks the fleet at `init()`. */
  checkFleet(orm: ShardedMikroORM, owner: string): void;
}

/** Bucket `b` on `shards[b % shards.length]`: every shard gets the same number of buckets (give or take one). */
export function evenSpread(shards: readonly ShardId[], buckets: number): ShardId[] {
  return Array.from({ length: buckets }, (_, bucket) => shards[bucket % shards.length]!);
}

/** One bucket's move from one shard to another. */
export interface BucketMove {
  readonly bucket: number;
  readonly from: ShardId;
  readonly to: ShardId;
}

/**
 * The fewest bucket moves that spread `assignments` evenly over `shards` (shards that are gone give all their
 * buckets away, new shards take their share): a shard keeps its buckets up to its fair share, and only the
 * surplus moves. Adding a fifth shard to four moves a fifth of the buckets, all to the new shard.
 */
export function rebalance(assignments: readonly ShardId[], shards: readonly ShardId[]): BucketMove[] {
  if (shards.length === 0) {
    throw ShardingError.invalidOptions('rebalance() needs at least one shard.');
  }
  const owned = new Map<ShardId, number[]>(shards.map(shard => [shard, []]));
  const surplus: { bucket: number; from: ShardId }[] = [];
  assignments.forEach((shard, bucket) => {
    const list = owned.get(shard);
    if (list) {
      list.push(bucket);
    } else {
      surplus.push({ bucket, from: shard });
    }
  });
  // Each shard's fair share; the shares one bucket larger go to the shards holding most now, so fewer buckets move.
  const base = Math.floor(assignments.length / shards.length);
  const larger = new Set([...shards].sort((a, b) => owned.get(b)!.length - owned.get(a)!.length).slice(0, assignments.length % shards.length));
  const quota = (shard: ShardId) => base + (larger.has(shard) ? 1 : 0);
  for (const shard of shards) {
    for (const bucket of owned.get(shard)!.splice(quota(shard))) {
      surplus.push({ bucket, from: shard });
    }
  }
  surplus.sort((a, b) => a.bucket - b.bucket);
  const moves: BucketMove[] = [];
  for (const shard of shards) {
    for (let have = owned.get(shard)!.length; have < quota(shard); have++) {
      const { bucket, from } = surplus.shift()!;
      moves.push({ bucket, from, to: shard });
    }
  }
  return moves.sort((a, b) => a.bucket - b.bucket);
}

/** The default directory: computed, nothing stored; changing the shards moves most buckets. */
export function evenDirectory(shards: readonly ShardId[], buckets: number): BucketDirectory {
  const spread = Object.freeze(evenSpread(shards, buckets));
  return {
    kind: 'even',
    shardOf: bucket => spread[bucket]!,
    assignments: async () => spread,
    moveBuckets: async () => {
      throw ShardingError.unsupported(
        'moveBuckets() on the even bucket spread',
        'the even spread is computed, not stored; give hash() a `directory: { shard }` to keep the buckets in a table',
      );
    },
    reload: async () => undefined,
    checkFleet: () => undefined,
  };
}

/** Where a hash strategy keeps its bucket table. */
export interface BucketTableOptions {
  /** The shard whose `shard_directory` table holds the buckets (it must declare `ShardDirectoryEntry`). */
  readonly shard: ShardId;
  /**
   * The directory's name in the table: strategies with the same name share their buckets.
   * @default 'default'
   */
  readonly name?: string;
}

interface Loaded {
  spread?: ShardId[];
  loading?: Promise<ShardId[]>;
}

/**
 * Buckets kept in the directory table, read once per fleet on first use and then answered from memory. An empty
 * table is filled with the even spread of the strategy's shards, so every process starts from the same directory.
 */
export function tableDirectory(table: BucketTableOptions, shards: readonly ShardId[], buckets: number): BucketDirectory {
  const name = `buckets:${table.name ?? 'default'}`;
  const state = new PerFleet<Loaded>(() => ({}));
  const load = (orm: ShardedMikroORM): Promise<ShardId[]> => {
    const loaded = state.of(orm);
    loaded.loading ??= read(orm, table.shard, name, shards, buckets).then(
      spread => {
        loaded.spread = spread;
        loaded.loading = undefined;
        return spread;
      },
      (error: unknown) => {
        loaded.loading = undefined;
        throw error;
      },
    );
    return loaded.loading;
  };
  return {
    kind: 'table',
    shardOf(bucket, context) {
      const spread = state.of(context.orm).spread;
      return spread ? spread[bucket]! : load(context.orm).then(loaded => loaded[bucket]!);
    },
    async assignments(orm) {
      return [...(state.of(orm).spread ?? (await load(orm)))];
    },
    async moveBuckets(orm, list, shard) {
      if (!orm.fleet.has(shard)) {
        throw ShardingError.unknownShard(shard, orm.shardIds, { source: 'moveBuckets()' });
      }
      const spread = state.of(orm).spread ?? (await load(orm));
      for (const bucket of list) {
        if (!Number.isInteger(bucket) || bucket < 0 || bucket >= buckets) {
          throw ShardingError.invalidOptions(`moveBuckets() got bucket ${describe(bucket)}; buckets are 0 ... ${buckets - 1}.`, bucket);
        }
      }
      await updateEntries(orm, table.shard, name, list.map(String), shard);
      for (const bucket of list) {
        spread[bucket] = shard;
      }
    },
    async reload(orm) {
      state.of(orm).spread = undefined;
      await load(orm);
    },
    checkFleet(orm, owner) {
      checkDirectoryShard(orm, table.shard, owner);
    },
  };
}

async function read(orm: ShardedMikroORM, shard: ShardId, name: string, shards: readonly ShardId[], buckets: number): Promise<ShardId[]> {
  let entries = await readEntries(orm, shard, name);
  if (entries.size < buckets) {
    const even = evenSpread(shards, buckets);
    const missing = new Map<string, ShardId>();
    for (let bucket = 0; bucket < buckets; bucket++) {
      if (!entries.has(String(bucket))) {
        missing.set(String(bucket), even[bucket]!);
      }
    }
    await insertMissing(orm, shard, name, missing);
    entries = await readEntries(orm, shard, name);
  }
  return Array.from({ length: buckets }, (_, bucket) => entries.get(String(bucket))!);
}
