import { MikroORM } from '@mikro-orm/core';
import { hash, range, ShardedMikroORM, tableSuffix, tableSuffixShard, type ShardByOptions, type ShardOptions } from 'mikro-orm-sharding';
import { adminQuery, type Topology } from '../support/topology.ts';
import { entities, Leaf, Rec, SHARDS, shardOfRec } from './model.ts';

/** A sharded fleet and one plain database that must hold the same rows. */
export interface Pair {
  readonly sharded: ShardedMikroORM;
  readonly plain: MikroORM;
  /** Where a record (and its leaves) lives in this fleet. */
  readonly shardOfRec: (id: number) => string;
  /** Whether queries that pin the key run on fewer shards (shardBy). */
  readonly prunes: boolean;
}

/**
 * How the fleet routes: hand-written choosers by `id % 4` (`choosers`), or `shardBy` with records keyed by id and
 * leaves following their record, through a hash or through ranges of ids (then queries are pruned by the key). With
 * `table-suffix`, the four shards are suffix tables (`rec_s0`, `leaf_s0` ...) of ONE database, routed like `choosers`
 * by `shardBy` with the `tableSuffix()` strategy.
 */
export type Routing = 'choosers' | 'hash' | 'range' | 'table-suffix';

const SHARD_IDS = Array.from({ length: SHARDS }, (_, i) => `s${i}`);
const strategies = {
  hash: hash({ shards: SHARD_IDS }),
  range: range([{ shard: 's0' }, { shard: 's1', from: 20 }, { shard: 's2', from: 45 }, { shard: 's3', from: 70 }]),
  'table-suffix': tableSuffix({ shards: SHARD_IDS, suffixOf: id => suffixOf(Number(id)) }),
};
/** A row's suffix is its record's `id % 4`; a query may pin ids no row has (-1, 2.5), which still need one. */
function suffixOf(id: number): string {
  return Number.isSafeInteger(id) ? `s${((id % SHARDS) + SHARDS) % SHARDS}` : 's0';
}
const context = { orm: undefined as never, entityName: 'Rec' };

/** The routing's placement of a record. */
function placement(routing: Routing): (id: number) => string {
  return routing === 'choosers' ? shardOfRec : id => strategies[routing].shardFor(id, context) as string;
}

function shardBy(routing: Exclude<Routing, 'choosers'>): ShardByOptions {
  return { Rec: { key: 'id', strategy: strategies[routing] }, Leaf: { parent: 'rec' } };
}

/**
 * Opens four shards and the reference database on a topology. PostgreSQL databases are created with the C
 * collation first: the merge compares strings by code point, as C (and SQLite's BINARY) do.
 */
export async function openPair(topology: Topology, routing: Routing = 'choosers'): Promise<Pair> {
  const shards = routing === 'table-suffix' ? suffixShards(topology.database('suffixes')) : topology.shards(SHARDS);
  const reference = topology.database('reference');
  if (topology.name === 'postgresql') {
    await createWithCCollation([...new Set([...Object.values(shards), reference].map(options => options.dbName!))]);
  }
  const sharded = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards,
    ...(routing === 'choosers'
      ? { shardChooser: ({ entity }: { entity: object }) => shardOfRec(entity instanceof Leaf ? entity.rec.id : (entity as Rec).id) }
      : { shardBy: shardBy(routing) }),
  });
  // Suffix shards share one database, which a refresh of each would drop under the others: it is new, create.
  await (routing === 'table-suffix' ? sharded.schema.create() : sharded.schema.refresh());
  const plain = await MikroORM.init({ ...topology.shared, ...reference, entities });
  await plain.schema.refresh();
  return { sharded, plain, shardOfRec: placement(routing), prunes: routing !== 'choosers' };
}

/** Four table-suffix shards over one database: every entity of the model has a table per suffix. */
function suffixShards(database: ShardOptions): Record<string, ShardOptions> {
  return Object.fromEntries(SHARD_IDS.map(suffix => [suffix, tableSuffixShard(database, { entities, suffix })]));
}

export async function closePair(pair: Pair | undefined): Promise<void> {
  await pair?.sharded.close(true);
  await pair?.plain.close(true);
}

async function createWithCCollation(names: readonly string[]): Promise<void> {
  await adminQuery(names.map(name => `create database "${name}" template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`));
}
