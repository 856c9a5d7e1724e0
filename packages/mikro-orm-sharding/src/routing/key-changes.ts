import { Reference, Utils, type Dictionary } from '@mikro-orm/core';
import { ShardingError } from '../errors/errors.ts';
import { helperOf, managedEntities, metaOf, originalDataOf } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import { canonicalKey } from '../strategies/canonical-key.ts';
import { labelOf } from '../write/write-plan.ts';
import { ownKey, shardOfOwnKey } from './place.ts';
import type { EntityRouting } from './shard-by.ts';

/**
 * Refuses a flush that changed the shard key (or the parent) of a loaded entity to one that maps to another shard:
 * the row would stay where it is and queries by its new key would miss it (`SHARD_KEY_CHANGED`). A change within the
 * same shard is fine; a directory records a new key on the entity's shard. Moving the row instead needs a
 * transaction across shards, which is not there yet.
 */
export async function checkKeyChanges(scope: ShardScope): Promise<void> {
  const keys = scope.orm.shardKeys;
  if (keys.size === 0) {
    return;
  }
  for (const [shard, fork] of scope.forks) {
    for (const entity of managedEntities(fork)) {
      const route = keys.of(metaOf(entity));
      if (route === undefined || !changed(route, entity)) {
        continue;
      }
      const label = () => labelOf(entity);
      const keyShard = await shardOfOwnKey(scope, route, entity, shard, label);
      if (keyShard !== undefined && keyShard !== shard) {
        throw ShardingError.shardKeyChanged(label(), route.label, ownKey(route, entity), keyShard, shard);
      }
    }
  }
}

/** Whether a loaded entity's key (or parent) is not what it was loaded or last flushed with. */
function changed(route: EntityRouting, entity: object): boolean {
  const original = originalDataOf(entity);
  if (original === undefined || !(route.property in original)) {
    return false;
  }
  const before = original[route.property];
  const now = (entity as Dictionary)[route.property];
  if (route.parent === undefined) {
    return before !== now && canonicalKey(before) !== canonicalKey(now);
  }
  // A to-one relation is kept as the related primary key.
  const target =
    now === null || now === undefined ? now : Utils.isEntity(now, true) ? helperOf(Reference.unwrapReference(now as object))?.getPrimaryKey() : now;
  return JSON.stringify(before) !== JSON.stringify(target);
}
