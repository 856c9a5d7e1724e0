import { resolve } from 'node:path';
import { Utils, type MikroORM } from '@mikro-orm/core';

/** Where a shard's migrations come from: a folder, or an in-code `migrationsList`. */
export interface MigrationsSource {
  /** Equal for shards that read the same migrations. */
  readonly key: unknown;
  /** The folder's absolute path, or `migrationsList` for in-code migrations. */
  readonly label: string;
}

/**
 * The migrations a shard reads, from its own MikroORM options (`migrations.path`, `pathTs`, `migrationsList`,
 * `baseDir`), the way MikroORM's migrator resolves them: shards with their own `migrations.path` (one folder per
 * database) get their own migrations; shards sharing the options share the folder.
 */
export function migrationsSource(orm: MikroORM): MigrationsSource {
  const options = orm.config.get('migrations');
  if (options.migrationsList) {
    return { key: options.migrationsList, label: 'migrationsList' };
  }
  const preferTs = orm.config.get('preferTs') ?? Utils.detectTypeScriptSupport();
  const path = preferTs && options.pathTs ? options.pathTs : (options.path ?? './migrations');
  const label = resolve(orm.config.get('baseDir'), path);
  return { key: label, label };
}
