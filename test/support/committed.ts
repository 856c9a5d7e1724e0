import { DatabaseSync } from 'node:sqlite';
import type { ShardedMikroORM, ShardId } from 'mikro-orm-sharding';

/**
 * Rows of a table on every shard as another session sees them: only what is committed. PostgreSQL: a pooled
 * connection of the shard's MikroORM (not the one a transaction holds). SQLite: a read-only handle of its own on the
 * file, since MikroORM's one connection per file is the transaction's until it ends.
 */
export async function committedRows(orm: ShardedMikroORM, table: string): Promise<Record<ShardId, number>> {
  const counts: Record<ShardId, number> = {};
  for (const id of orm.shardIds) {
    const shard = orm.shard(id);
    if (shard.driver.getDependencies().includes('pg')) {
      const [row] = await shard.em.getConnection().execute(`select count(*) as c from "${table}"`);
      counts[id] = Number(row.c);
    } else {
      const database = new DatabaseSync(shard.config.get('dbName')!, { readOnly: true });
      try {
        counts[id] = Number((database.prepare(`select count(*) as c from "${table}"`).get() as { c: number }).c);
      } finally {
        database.close();
      }
    }
  }
  return counts;
}
