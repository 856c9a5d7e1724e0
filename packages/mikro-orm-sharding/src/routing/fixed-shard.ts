import type { EntityName } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import { checkEntityOnShard } from '../route.ts';
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

/**
 * The shard a read goes to without asking a chooser, as a list: the entity's bind (checked by `init()`), else the
 * pinned shard, which must declare the entity (`ENTITY_NOT_ON_SHARD`). Undefined when the choosers route.
 */
export function fixedReadShards(scope: ShardScope, entityName: EntityName<object> | string): readonly ShardId[] | undefined {
  const bound = boundShard(scope.orm, entityName);
  if (bound !== undefined) {
    return [bound];
  }
  const pinned = scope.pinned;
  if (pinned === undefined) {
    return undefined;
  }
  if (!shardsKnowing(scope.orm, entityName as EntityName<object>).has(pinned)) {
    checkEntityOnShard(scope, entityName as EntityName<object>, pinned, fixedBy(scope, entityName), false);
  }
  return [pinned];
}

/** Who fixed the shard {@link fixedShard} answered, for error messages. */
export function fixedBy(scope: ShardScope, entityName: EntityName<object> | string): string {
  return boundShard(scope.orm, entityName) === undefined ? `the pinned shard ("${scope.pinned}")` : 'the `binds` option';
}
