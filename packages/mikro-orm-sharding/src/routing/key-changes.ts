import { Reference, Utils, type Dictionary } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { helperOf, managedEntities, metaOf, originalDataOf } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import { canonicalKey } from '../strategies/canonical-key.ts';
import { labelOf } from '../write/write-plan.ts';
import { shardOfOwnKey } from './place.ts';
import type { EntityRouting } from './shard-by.ts';

/** A loaded entity whose declared shard key (or parent) now maps to another shard than the one it lives on. */
export interface KeyChange {
  readonly entity: object;
  readonly route: EntityRouting;
  readonly from: ShardId;
  readonly to: ShardId;
}

/**
 * The loaded entities of this entity manager whose shard key (or parent) was changed, since they were loaded or last
 * flushed, to a value that maps to another shard: their rows must move there (or the flush be refused). A change
 * within the same shard is no move; a directory records a new key on the entity's shard.
 */
export async function keyChanges(scope: ShardScope): Promise<KeyChange[]> {
  const keys = scope.orm.shardKeys;
  const changes: KeyChange[] = [];
  if (keys.size === 0) {
    return changes;
  }
  for (const [shard, fork] of scope.forks) {
    for (const entity of managedEntities(fork)) {
      const route = keys.of(metaOf(entity));
      if (route === undefined || !changed(route, entity)) {
        continue;
      }
      const keyShard = await shardOfOwnKey(scope, route, entity, shard, () => labelOf(entity));
      if (keyShard !== undefined && keyShard !== shard) {
        changes.push({ entity, route, from: shard, to: keyShard });
      }
    }
  }
  return changes;
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
