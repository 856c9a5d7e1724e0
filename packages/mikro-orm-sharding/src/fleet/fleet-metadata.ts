import type { EntityMetadata, EntityName } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

// What a fleet's shards know of its entities, computed once per fleet and forgotten when shards come or go.

const knowledge = new WeakMap<ShardedMikroORM, Map<EntityName<object>, ReadonlySet<ShardId>>>();

/**
 * The shards whose MikroORM knows an entity (shards may each hold only some entities: main + warehouse),
 * computed once per fleet and entity: metadata does not change after init, and lookups ask on every call.
 */
export function shardsKnowing(orm: ShardedMikroORM, entityName: EntityName<object>): ReadonlySet<ShardId> {
  const known = fleetCache(knowledge, orm);
  let shards = known.get(entityName);
  if (!shards) {
    shards = new Set(orm.shardIds.filter(id => orm.fleet.metadata(id).find(entityName) !== undefined));
    known.set(entityName, shards);
  }
  return shards;
}

/** The first shard that knows the entity (the first shard of all when none does: MikroORM will say so; none without shards). */
export function shardWith(orm: ShardedMikroORM, entityName: EntityName<object>): ShardId | undefined {
  const [first] = shardsKnowing(orm, entityName);
  return first ?? orm.shardIds[0];
}

/** Forgets what the shards know: shards came or went. */
export function forgetShardKnowledge(orm: ShardedMikroORM): void {
  knowledge.delete(orm);
  metadata.delete(orm);
}

const metadata = new WeakMap<ShardedMikroORM, Map<EntityName<object>, EntityMetadata>>();

/** An entity's metadata, from the first shard that knows it; asked on every read, so kept per fleet. */
export function metadataOf<T extends object>(orm: ShardedMikroORM, entityName: EntityName<T>): EntityMetadata<T> {
  const known = fleetCache(metadata, orm);
  let meta = known.get(entityName as EntityName<object>);
  if (!meta) {
    meta = orm.fleet
      .template(shardWith(orm, entityName as EntityName<object>))
      .getMetadata()
      .get(entityName) as EntityMetadata;
    known.set(entityName as EntityName<object>, meta);
  }
  return meta as EntityMetadata<T>;
}

function fleetCache<V>(caches: WeakMap<ShardedMikroORM, Map<EntityName<object>, V>>, orm: ShardedMikroORM): Map<EntityName<object>, V> {
  let cache = caches.get(orm);
  if (!cache) {
    cache = new Map();
    caches.set(orm, cache);
  }
  return cache;
}
