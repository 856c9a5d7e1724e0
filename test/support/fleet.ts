import { MikroORM } from '@mikro-orm/core';
import { ShardedMikroORM, type ShardChooser, type ShardedMikroORMOptions, type ShardId } from 'mikro-orm-sharding';
import { Author, Book, entities, Tag } from './entities.ts';
import type { Topology } from './topology.ts';

export const SHARDS = 3;

/** Authors and tags live on `id % 3`; a book lives with its author. */
export function shardOfId(id: unknown): ShardId {
  return `s${Number(id) % SHARDS}`;
}

export const shardChooser: ShardChooser = ({ entity, em }) => {
  if (entity instanceof Book) {
    return em.shardOf(entity.author) ?? shardOfId(entity.author.id);
  }
  return shardOfId((entity as Author | Tag).id);
};

/** A fleet of three shards on the topology; a fresh schema unless `fresh` is false (a second view of the same data). */
export async function openFleet(topology: Topology, overrides: Partial<ShardedMikroORMOptions> = {}, fresh = true): Promise<ShardedMikroORM> {
  const orm = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards: topology.shards(SHARDS),
    shardChooser,
    idChooser: ({ entityName, id }) => (entityName === 'Book' ? ['s0', 's1', 's2'] : [shardOfId(id)]),
    ...overrides,
  });
  if (fresh) {
    await orm.schema.refresh();
  }
  return orm;
}

/** One plain MikroORM database holding the same rows: what every merged answer must equal. */
export async function openReference(topology: Topology): Promise<MikroORM> {
  const orm = await MikroORM.init({ ...topology.shared, ...topology.database('reference'), entities });
  await orm.schema.refresh();
  return orm;
}

/** Counts rows of a table on every shard with raw SQL, not through the library. */
export async function rowsPerShard(orm: ShardedMikroORM, table: string): Promise<Record<ShardId, number>> {
  const counts: Record<ShardId, number> = {};
  for (const id of orm.shardIds) {
    const [row] = await orm.shard(id).em.fork().getConnection().execute(`select count(*) as c from ${table}`);
    counts[id] = Number(row.c);
  }
  return counts;
}

/**
 * Rows of every table on every shard, counted with raw SQL, not through the library: comparing two of these
 * proves that nothing was written, whatever the shards hold.
 */
export async function allRows(orm: ShardedMikroORM): Promise<Record<ShardId, Record<string, number>>> {
  const counts: Record<ShardId, Record<string, number>> = {};
  for (const id of orm.shardIds) {
    const shard = orm.shard(id);
    const connection = shard.em.fork().getConnection();
    const tables: { name: string }[] = shard.driver.getDependencies().includes('pg')
      ? await connection.execute(`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`)
      : await connection.execute(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`);
    counts[id] = {};
    for (const { name } of tables.sort((x, y) => x.name.localeCompare(y.name))) {
      const [row] = await connection.execute(`select count(*) as c from "${name}"`);
      counts[id][name] = Number(row.c);
    }
  }
  return counts;
}

export interface SeedRow {
  readonly id: number;
  readonly name: string;
  readonly born: number | null;
  readonly rating: string | null;
  readonly books: readonly { id: number; title: string; price: string | null }[];
}

/** Deterministic authors with awkward values: nulls, ties, decimals whose text order differs from numeric order. */
export function seedRows(count = 30): SeedRow[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    name: `${['ann', 'Bob', 'cid', 'Dee', 'eve'][i % 5]}-${String((i * 7) % count).padStart(2, '0')}`,
    born: i % 6 === 0 ? null : 1950 + ((i * 13) % 40),
    rating: i % 7 === 0 ? null : (((i * 37) % 100) / 4).toFixed(2),
    books: Array.from({ length: i % 3 }, (_, j) => ({
      id: (i + 1) * 10 + j,
      title: `book-${(i * 11 + j * 5) % 50}`,
      price: (i + j) % 9 === 0 ? '100.5' : `${(i * 3 + j) % 20}.25`,
    })),
  }));
}
