import type { ShardedMikroORM } from 'mikro-orm-sharding';

/** How many prepared transactions of a coordinator the server holds: none once its two-phase commits are over. */
export async function preparedCount(orm: ShardedMikroORM, coordinatorId: string): Promise<number> {
  const found: unknown[] = await orm
    .shard(orm.shardIds[0]!)
    .em.getConnection()
    .execute('select gid from pg_prepared_xacts where starts_with(gid, ?)', [`mos:${coordinatorId}:`]);
  return found.length;
}
