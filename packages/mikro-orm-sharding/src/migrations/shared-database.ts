import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { databaseOf } from '../table-suffix/same-database.ts';

/**
 * Refuses `orm.migrator` when one of `targets` shares its database with another shard of the fleet (table-suffix
 * shards), targeted or not: MikroORM keeps one `mikro_orm_migrations` table per database, so shards on one database
 * would run each migration several times there, or skip it as already run by another; and a migration generated from
 * one suffix shard's schema names that shard's tables only.
 */
export function refuseSharedDatabases(orm: ShardedMikroORM, targets: readonly ShardId[], operation: string): void {
  const first = new Map<string, ShardId>();
  const shared = new Map<ShardId, ShardId>();
  for (const id of orm.shardIds) {
    const database = databaseOf(orm.shard(id).em);
    if (database === undefined) {
      continue;
    }
    const owner = first.get(database);
    if (owner === undefined) {
      first.set(database, id);
    } else {
      shared.set(id, owner).set(owner, shared.get(owner) ?? id);
    }
  }
  for (const id of targets) {
    const other = shared.get(id);
    if (other !== undefined) {
      throw ShardingError.migrationsShareDatabase(operation, id, other);
    }
  }
}
