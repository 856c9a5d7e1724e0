import type { EntityName } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import type { ShardScope } from '../scope.ts';
import { boundShard } from './binds.ts';

/**
 * The shard an entity goes to without asking a chooser: its bind (a named database), else the shard its entity
 * manager is pinned to (`em.fork({ shard })`, a request's `shardResolver`). Routing asks this after `{ shard }` and
 * an entity's own shard, and before the choosers.
 */
export function fixedShard(scope: ShardScope, entityName: EntityName<object> | string): ShardId | undefined {
  return boundShard(scope.orm, entityName) ?? scope.pinned;
}

/** Who fixed the shard {@link fixedShard} answered, for error messages. */
export function fixedBy(scope: ShardScope, entityName: EntityName<object> | string): string {
  return boundShard(scope.orm, entityName) === undefined ? `the pinned shard ("${scope.pinned}")` : 'the `binds` option';
}
