import { MikroORM } from '@mikro-orm/core';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { adminQuery, type Topology } from '../support/topology.ts';
import { entities, Leaf, Rec, SHARDS, shardOfRec } from './model.ts';

/** A sharded fleet and one plain database that must hold the same rows. */
export interface Pair {
  readonly sharded: ShardedMikroORM;
  readonly plain: MikroORM;
}

/**
 * Opens four shards and the reference database on a topology. PostgreSQL databases are created with the C
 * collation first: the merge compares strings by code point, as C (and SQLite's BINARY) do.
 */
export async function openPair(topology: Topology): Promise<Pair> {
  const shards = topology.shards(SHARDS);
  const reference = topology.database('reference');
  if (topology.name === 'postgresql') {
    await createWithCCollation([...Object.values(shards), reference].map(options => options.dbName!));
  }
  const sharded = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards,
    shardChooser: ({ entity }) => shardOfRec(entity instanceof Leaf ? entity.rec.id : (entity as Rec).id),
  });
  await sharded.schema.refresh();
  const plain = await MikroORM.init({ ...topology.shared, ...reference, entities });
  await plain.schema.refresh();
  return { sharded, plain };
}

export async function closePair(pair: Pair | undefined): Promise<void> {
  await pair?.sharded.close(true);
  await pair?.plain.close(true);
}

async function createWithCCollation(names: readonly string[]): Promise<void> {
  await adminQuery(names.map(name => `create database "${name}" template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`));
}
