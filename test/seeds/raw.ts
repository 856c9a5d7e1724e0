/**
 * Raw-SQL helpers for the seed scenarios: every "where did it land" check reads the databases directly through
 * each shard's own MikroORM connection, never through the sharding library's routing.
 */
import type { ShardedMikroORM, ShardId } from 'mikro-orm-sharding';
import { adminQuery } from '../support/topology.ts';

/** Runs a raw statement on one shard's own connection. */
export async function rawQuery(orm: ShardedMikroORM, shard: ShardId, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return orm.shard(shard).em.fork().getConnection().execute(sql, params);
}

/** `select count(*)` on one shard (the table name is used as given, so quote or schema-qualify it yourself). */
export async function rawCount(orm: ShardedMikroORM, shard: ShardId, table: string, where = ''): Promise<number> {
  const [row] = await rawQuery(orm, shard, `select count(*) as c from ${table}${where ? ` where ${where}` : ''}`);
  return Number(row!.c);
}

/** `rawCount` on every shard of the fleet, by shard id. */
export async function rawCounts(orm: ShardedMikroORM, table: string, where = ''): Promise<Record<ShardId, number>> {
  const counts: Record<ShardId, number> = {};
  for (const shard of orm.shardIds) {
    counts[shard] = await rawCount(orm, shard, table, where);
  }
  return counts;
}

/** A name unique to this run, for databases, schemas and roles on the shared PostgreSQL server. */
export function uniqueName(label: string): string {
  return `mos_seed_${label}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Runs statements on the PostgreSQL server's `postgres` database (create/drop databases and roles). */
export async function adminExecute(statements: readonly string[]): Promise<void> {
  await adminQuery(statements);
}
