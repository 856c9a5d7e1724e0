import type { IDatabaseDriver } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { shardConfigs, type EntityList, type ShardedMikroORMOptions, type ShardOptions } from '../options.ts';

/** What a `mikro-orm.config.ts` exports for MikroORM's CLI: one config per shard, then a function for any other name. */
export type ShardCliConfigs<D extends IDatabaseDriver = IDatabaseDriver> = readonly (ShardOptions<D> | ((contextName: string) => ShardOptions<D>))[];

/**
 * One MikroORM config per shard, with `contextName` = shard id, for MikroORM's own CLI: export it from
 * `mikro-orm.config.ts` and pick a shard with `--context`, as in `mikro-orm migration:up --context s2` or
 * `mikro-orm schema:update --dump --context s1`. Each config is what `ShardedMikroORM.init()` gives that shard (the
 * shared options merged with the shard's own), so the CLI sees the same database, entities and migrations folder.
 * A run without `--context` (or with an unknown one) fails with the list of shards.
 *
 * @example
 * ```ts
 * // mikro-orm.config.ts
 * export default shardConfigsForCli(defineShardingConfig({ driver: SqliteDriver, entities, shards, shardChooser }));
 * ```
 */
export function shardConfigsForCli<D extends IDatabaseDriver, Shards extends object, Entities extends EntityList>(
  options: ShardedMikroORMOptions<D, Shards, Entities>,
): ShardCliConfigs<D> {
  const configs = shardConfigs(options);
  if (configs.size === 0) {
    // The CLI works on the shards the config names; a registry filled at runtime has none here.
    throw ShardingError.noShards();
  }
  const ids: ShardId[] = [...configs.keys()];
  const unknown = (contextName: string): never => {
    throw new ShardingError(
      'UNKNOWN_SHARD',
      `This MikroORM config is a sharded one: pick a shard with --context (one of ${ids.join(', ')}); got "${contextName}". ` +
        'To migrate every shard at once, run orm.migrator.up() from a script (see docs/operations.md).',
      { value: contextName },
    );
  };
  return [...configs.values(), unknown];
}
