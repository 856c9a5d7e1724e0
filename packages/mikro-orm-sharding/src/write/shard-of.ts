import { Reference } from '@mikro-orm/core';
import type { Fleet } from '../fleet/fleet.ts';
import type { ShardId } from '../choosers.ts';
import { helperOf, managerOf, type EntityHelper } from '../mikro-internals.ts';

/**
 * The shard an entity was explicitly created on (`{ shard }`), before any entity manager manages it. Written and
 * flushed entities need no entry: MikroORM tells their entity manager, hence their shard.
 */
const remembered = new WeakMap<object, ShardId>();

/** Entity managers that only stage new entities before their shard is decided; what they own has no shard yet. */
const staging = new WeakSet<object>();

export function markStaging(em: object): void {
  staging.add(em);
}

/**
 * The default schema of staging forks. Entities remember the schema of the entity manager that created them, and
 * a staged entity must take its shard's schema instead (shards may be schemas of one database).
 */
export const STAGED_SCHEMA = '\0mikro-orm-sharding:staged';

/** Whether an entity (usually a reference made by `em.create(Book, { author: 1 })`) belongs to a staging fork. */
export function isStaged(entity: object): boolean {
  const owner = managerOf(entity);
  return owner !== undefined && staging.has(owner);
}

export function rememberShard(entity: object, shard: ShardId): void {
  remembered.set(entity, shard);
}

/** The shard an entity was explicitly created on or inserted to (`{ shard }`), if any. */
export function explicitShard(entity: object): ShardId | undefined {
  return remembered.get(entity);
}

/**
 * Where an entity lives: the shard it was written to or explicitly created on, or else the shard of the entity
 * manager that loaded it (each shard's MikroORM has `contextName` = its shard id).
 */
export function knownShard(entity: object, fleet: Fleet): ShardId | undefined {
  const target = Reference.unwrapReference(entity);
  return shardOfWrapped(target, helperOf(target), fleet);
}

/** {@link knownShard} for a caller that already holds the entity's helper (the write path reads it once). */
export function shardOfWrapped(entity: object, wrapped: EntityHelper | undefined, fleet: Fleet): ShardId | undefined {
  const shard = remembered.get(entity);
  if (shard !== undefined) {
    return shard;
  }
  const owner = wrapped?.__em;
  if (!owner || staging.has(owner)) {
    return undefined;
  }
  // Forks share their ORM's Configuration, so identity tells our shard apart from another fleet's same-named one.
  return fleet.shardOfConfig(owner.config);
}
