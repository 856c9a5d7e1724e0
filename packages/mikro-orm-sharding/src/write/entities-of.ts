import { Reference, Utils, ValidationError } from '@mikro-orm/core';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

/**
 * The entities `persist()`/`remove()`/`move()` were given, unwrapped: an entity or reference, or an iterable of them, as
 * MikroORM takes them. Anything else gets MikroORM's own error, before any of them is taken.
 */
export function entitiesOf(orm: ShardedMikroORM, value: unknown, action: 'persist' | 'remove' | 'move'): object[] {
  if (Utils.isEntity(value)) {
    return [value as object];
  }
  const items: unknown[] = Utils.asArray(value, action !== 'persist');
  for (const item of items) {
    if (!Utils.isEntity(item, true)) {
      throw action === 'persist' ? ValidationError.notDiscoveredEntity(item, discoveredAs(orm, item)) : new Error(needsEntity(action));
    }
  }
  return items.map(item => Reference.unwrapReference(item as object));
}

/** MikroORM's words when `em.remove()` gets something other than an entity (and ours for `em.move()`). */
function needsEntity(action: 'remove' | 'move'): string {
  return action === 'remove'
    ? "You need to pass entity instance or reference to 'em.remove()'. To remove entities by condition, use 'em.nativeDelete()'."
    : "You need to pass entity instance or reference to 'em.move()'.";
}

/** The metadata a shard has for the class of an object that is not an entity (MikroORM's error then says why). */
function discoveredAs(orm: ShardedMikroORM, item: unknown) {
  const type = item !== null && typeof item === 'object' ? item.constructor : undefined;
  if (type === undefined || type === Object) {
    return undefined;
  }
  for (const id of orm.shardIds) {
    const meta = orm.fleet.metadata(id).find(type);
    if (meta) {
      return meta;
    }
  }
  return undefined;
}
