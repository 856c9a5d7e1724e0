import type { MikroORM } from '@mikro-orm/core';
import { DatabaseSchema, type SqlEntityManager } from '@mikro-orm/sql';

/**
 * One database's tables as MikroORM's schema introspection reads them (no entities needed), without MikroORM's
 * migrations table, the config's `schemaGenerator.skipTables` and `skipTables`.
 */
export async function introspectTables(orm: MikroORM, skipTables: readonly (string | RegExp)[] = []): Promise<DatabaseSchema> {
  const em = orm.em.fork() as SqlEntityManager;
  const { skipTables: configured = [], skipViews = [] } = orm.config.get('schemaGenerator');
  const migrations = orm.config.get('migrations').tableName ?? 'mikro_orm_migrations';
  return DatabaseSchema.create(
    em.getConnection(),
    em.getPlatform(),
    orm.config,
    undefined,
    undefined,
    undefined,
    [...configured, ...skipTables, migrations],
    skipViews,
  );
}
