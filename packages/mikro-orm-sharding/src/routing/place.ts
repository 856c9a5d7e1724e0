import { Reference, Utils, type Dictionary, type EntityName } from '@mikro-orm/core';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { helperOf, managerOf } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import { isBucketed } from '../strategies/strategy.ts';
import { shardOfBucket, shardOfTarget } from './key-shards.ts';
import { settled } from './settled.ts';
import type { EntityRouting } from './shard-by.ts';

// Where a new entity of a declared entity goes, and the check of a shard decided some other way (`{ shard }`, a
// hand-written chooser, the entity that reaches it in a flush): the key must agree, or queries pruned by it would
// not find the row.

/** The shard a new entity goes to by its declaration: its key's (recorded, for a directory), or its parent's. */
export function derivedShard(scope: ShardScope, route: EntityRouting, entity: object, label: () => string): MaybePromise<ShardId> {
  if (route.parent === undefined) {
    const value = keyOf(route, entity, label);
    const shard = route.ids !== undefined && route.keyIsPrimary ? idShard(route, value, label) : placeKey(route, value, undefined);
    return settled(shard, found => found ?? unplaceable(route, value, label));
  }
  const target = (entity as Dictionary)[route.property];
  if (target === null || target === undefined) {
    throw ShardingError.invalidShardKey(
      label(),
      route.label,
      undefined,
      `${route.entityName} lives on the shard of its ${route.property} (shardBy.${route.entityName}.parent), and ${route.property} is not set`,
    );
  }
  return shardOfParent(scope, route, Reference.unwrapReference(target as object), label);
}

/**
 * Checks a shard decided otherwise than by the declaration. A directory records the shard for a key it does not
 * know yet (that is how a key is placed by hand); any other disagreement is `SHARD_KEY_MISMATCH`.
 */
export function checkDecided(scope: ShardScope, route: EntityRouting, entity: object, shard: ShardId, source: string, label: () => string): MaybePromise<void> {
  return settled(shardOfOwnKey(scope, route, entity, shard, label), found => {
    if (found !== undefined && found !== shard) {
      throw ShardingError.shardKeyMismatch(label(), route.label, ownKey(route, entity), found, shard, source);
    }
  });
}

/**
 * The shard an entity's own key (or its parent) maps to, for an entity whose shard is `shard`: a directory records
 * `shard` for a key it does not know. Undefined when the parent is not set, or new (the flush places it with its
 * child), or its shard cannot be told.
 */
export function shardOfOwnKey(scope: ShardScope, route: EntityRouting, entity: object, shard: ShardId, label: () => string): MaybePromise<ShardId | undefined> {
  if (route.parent === undefined) {
    const value = keyOf(route, entity, label);
    const keyShard = route.ids !== undefined && route.keyIsPrimary ? idShard(route, value, label) : placeKey(route, value, shard);
    return settled(keyShard, found => found ?? unplaceable(route, value, label));
  }
  const target = (entity as Dictionary)[route.property];
  if (target === null || target === undefined || (Utils.isEntity(target, true) && managerOf(Reference.unwrapReference(target as object)) === undefined)) {
    return undefined;
  }
  return shardOfTarget(scope, route.parent, target);
}

/** The value of an entity's key, or of its parent's primary key, for messages. */
export function ownKey(route: EntityRouting, entity: object): unknown {
  const value = (entity as Dictionary)[route.property];
  return route.parent === undefined ? value : primaryKeyOf(value);
}

/**
 * For an entity whose ids carry their bucket: the id must carry the bucket its key (or its parent) maps to, else a
 * lookup by id would search another shard. Runs for every such new entity, however its shard was decided.
 */
export function checkIdBucket(route: EntityRouting, entity: object, shard: ShardId, label: () => string): MaybePromise<void> {
  const ids = route.ids!;
  const id = (entity as Dictionary)[route.primaryKey!];
  const bucket = ids.bucketOf(id);
  if (bucket === undefined) {
    throw ShardingError.invalidShardKey(
      label(),
      `${route.entityName}.${route.primaryKey}`,
      id,
      'shardBy declares ids, and this is not an id made by idGenerator()',
    );
  }
  if (!route.keyIsPrimary) {
    const expected =
      route.parent === undefined
        ? keyBucket(route, (entity as Dictionary)[route.property])
        : relatedBucket(route.parent, (entity as Dictionary)[route.property]);
    if (expected !== undefined && expected !== bucket) {
      const how =
        route.parent === undefined
          ? `ids.next(strategy.bucketOf(${route.property}))`
          : `ids.next(ids.bucketOf(${route.property}.${route.parent.primaryKey ?? 'id'}))`;
      throw ShardingError.idBucketMismatch(label(), id, bucket, expected, how);
    }
  }
  return settled(shardOfBucket(route, bucket), idShardFound => {
    if (idShardFound !== shard) {
      throw ShardingError.shardKeyMismatch(
        label(),
        `${route.entityName}.${route.primaryKey} (its id's bucket ${bucket})`,
        id,
        idShardFound!,
        shard,
        'its shard',
      );
    }
  });
}

function keyOf(route: EntityRouting, entity: object, label: () => string): unknown {
  const value = (entity as Dictionary)[route.property];
  if (value === null || value === undefined) {
    throw ShardingError.invalidShardKey(
      label(),
      route.label,
      value,
      `the shard key is not set (set it before the flush${route.keyIsPrimary ? ', or give the primary key an `onCreate` default' : ''})`,
    );
  }
  return value;
}

function placeKey(route: EntityRouting, value: unknown, requested: ShardId | undefined): MaybePromise<ShardId | undefined> {
  const strategy = route.strategy!;
  return strategy.place ? strategy.place(value, route.context, requested) : strategy.shardFor(value, route.context);
}

function idShard(route: EntityRouting, value: unknown, label: () => string): MaybePromise<ShardId | undefined> {
  const bucket = route.ids!.bucketOf(value);
  if (bucket === undefined) {
    throw ShardingError.invalidShardKey(label(), route.label, value, 'shardBy declares ids, and this is not an id made by idGenerator()');
  }
  return shardOfBucket(route, bucket);
}

function unplaceable(route: EntityRouting, value: unknown, label: () => string): never {
  throw ShardingError.invalidShardKey(label(), route.label, value, `the ${route.strategy!.kind} strategy has no shard for it`);
}

/** The shard of the entity a new child follows: known, told by its key, placed with it (a new parent), or looked up. */
function shardOfParent(scope: ShardScope, route: EntityRouting, target: object, label: () => string): MaybePromise<ShardId> {
  const parent = route.parent!;
  const known = scope.shardOf(target);
  if (known !== undefined) {
    return known;
  }
  if (managerOf(target) === undefined && helperOf(target) !== undefined) {
    // A new parent, placed in this flush: where its own declaration puts it.
    return derivedShard(scope, parent, target, label);
  }
  return settled(shardOfTarget(scope, parent, target), async shard => {
    if (shard !== undefined) {
      return shard;
    }
    // A reference whose key does not tell its shard (`em.create(Book, { author: 5 })`): find it, once per entity manager.
    const pk = helperOf(target)?.getPrimaryKey();
    const found = pk === undefined || pk === null ? null : await scope.em.findOne(parent.meta.class as EntityName<object>, pk as never);
    const shardOfFound = found === null ? undefined : scope.shardOf(found);
    if (shardOfFound === undefined) {
      throw ShardingError.invalidShardKey(
        label(),
        route.label,
        pk,
        `${route.entityName} lives on the shard of its ${route.property}, and no shard holds ${parent.entityName} ${String(pk)}`,
      );
    }
    return shardOfFound;
  });
}

function keyBucket(route: EntityRouting, value: unknown): number | undefined {
  const strategy = route.root.strategy!;
  if (value === null || value === undefined || !isBucketed(strategy)) {
    return undefined;
  }
  try {
    return strategy.bucketOf(value, route.context);
  } catch {
    return undefined;
  }
}

/** The bucket of the entity a value of the parent relation names, when it can be told without a query. */
function relatedBucket(route: EntityRouting, value: unknown): number | undefined {
  if (value === null || value === undefined) {
    return undefined;
  }
  const target = Utils.isEntity(value, true) ? (Reference.unwrapReference(value as object) as Dictionary) : undefined;
  const pk = target === undefined ? value : route.primaryKey === undefined ? undefined : target[route.primaryKey];
  if (route.ids !== undefined) {
    return pk === undefined ? undefined : route.ids.bucketOf(pk);
  }
  if (route.parent === undefined) {
    return keyBucket(route, route.keyIsPrimary ? pk : target?.[route.property]);
  }
  return target === undefined ? undefined : relatedBucket(route.parent, target[route.property]);
}

function primaryKeyOf(target: unknown): unknown {
  return Utils.isEntity(target, true) ? helperOf(Reference.unwrapReference(target as object))?.getPrimaryKey() : target;
}
