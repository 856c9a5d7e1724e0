import { MikroORM } from '@mikro-orm/core';
import { hash, range, ShardedMikroORM, type ShardByOptions } from 'mikro-orm-sharding';
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
 * leaves following their record, through a hash or through ranges of ids (then queries are pruned by the key).
 */
export type Routing = 'choosers' | 'hash' | 'range';

const SHARD_IDS = Array.from({ length: SHARDS }, (_, i) => `s${i}`);
const strategies = {
  hash: hash({ shards: SHARD_IDS }),
  range: range([{ shard: 's0' }, { shard: 's1', from: 20 }, { shard: 's2', from: 45 }, { shard: 's3', from: 70 }]),
};
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
  const shards = topology.shards(SHARDS);
  const reference = topology.database('reference');
  if (topology.name === 'postgresql') {
    await createWithCCollation([...Object.values(shards), reference].map(options => options.dbName!));
  }
  const sharded = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards,
    ...(routing === 'choosers'
      ? { shardChooser: ({ entity }: { entity: object }) => shardOfRec(entity instanceof Leaf ? entity.rec.id : (entity as Rec).id) }
      : { shardBy: shardBy(routing) }),
  });
  await sharded.schema.refresh();
  const plain = await MikroORM.init({ ...topology.shared, ...reference, entities });
  await plain.schema.refresh();
  return { sharded, plain, shardOfRec: placement(routing), prunes: routing !== 'choosers' };
}

export async function closePair(pair: Pair | undefined): Promise<void> {
  await pair?.sharded.close(true);
  await pair?.plain.close(true);
}

async function createWithCCollation(names: readonly string[]): Promise<void> {
  await adminQuery(names.map(name => `create database "${name}" template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`));
}
