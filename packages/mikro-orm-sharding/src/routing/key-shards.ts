import { Reference, Utils, wrap } from '@mikro-orm/core';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { helperOf } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import type { BucketedStrategy } from '../strategies/strategy.ts';
import type { EntityRouting } from './shard-by.ts';

// What one value tells about a declared entity's shard: a key value, a primary key, a related entity. Each answer is
// a shard, or undefined when the value does not tell (then every shard may hold the row).

/** The shard of the rows whose key (the declared property of a keyed entity) is `value`. */
export function shardOfKey(route: EntityRouting, value: unknown): MaybePromise<ShardId | undefined> {
  // Only values a column holds: a raw SQL fragment or a RegExp in a condition pins nothing.
  if (value === null || value === undefined || (typeof value === 'object' && !(value instanceof Date))) {
    return undefined;
  }
  if (route.ids !== undefined && route.keyIsPrimary) {
    return shardOfBucket(route, route.ids.bucketOf(value));
  }
  return route.strategy!.shardFor(value, route.context);
}

/** The shard of the row with this primary key, when the key tells it: the key is the shard key, or carries its bucket. */
export function shardOfPrimaryKey(route: EntityRouting, pk: unknown): MaybePromise<ShardId | undefined> {
  if (pk === null || pk === undefined) {
    return undefined;
  }
  if (route.ids !== undefined) {
    return shardOfBucket(route, route.ids.bucketOf(pk));
  }
  if (route.keyIsPrimary) {
    return route.strategy!.shardFor(pk, route.context);
  }
  // A composite key holding the parent (`[author, id]`): the parent's key tells.
  if (route.parent !== undefined && route.parentInKey >= 0 && Array.isArray(pk)) {
    return shardOfTarget(undefined, route.parent, pk[route.parentInKey]);
  }
  return undefined;
}

/** The shard of a bucket the ids carry, on the strategy at the top of the entity's parent chain. */
export function shardOfBucket(route: EntityRouting, bucket: number | undefined): MaybePromise<ShardId | undefined> {
  return bucket === undefined ? undefined : (route.root.strategy as BucketedStrategy).shardForBucket(bucket, route.root.context);
}

/**
 * The shard of the entity a to-one value names (a relation to the declared entity `route`): an entity or reference
 * whose shard is known, or whose primary key or loaded key tells it, or a bare primary key.
 */
export function shardOfTarget(scope: ShardScope | undefined, route: EntityRouting, value: unknown): MaybePromise<ShardId | undefined> {
  if (value === null || value === undefined) {
    return undefined;
  }
  if (!Utils.isEntity(value, true)) {
    return Utils.isPrimaryKey(value, route.meta.compositePK) ? shardOfPrimaryKey(route, value) : undefined;
  }
  const target = Reference.unwrapReference(value as object);
  const wrapped = helperOf(target);
  const byKey = wrapped?.hasPrimaryKey() ? shardOfPrimaryKey(route, wrapped.getPrimaryKey()) : undefined;
  // A reference never loaded is only on the shard of the fork that made it (`em.create(Book, { author: 5 }, { shard })`
  // makes author 5's reference there): its key, when it tells, knows better.
  if (byKey !== undefined && !wrap(target).isInitialized()) {
    return byKey;
  }
  const known = scope?.shardOf(target);
  if (known !== undefined) {
    return known;
  }
  if (byKey !== undefined) {
    return byKey;
  }
  // A loaded (or new) entity: its own key, or its parent's shard.
  const own = (target as Record<string, unknown>)[route.property];
  return route.parent === undefined ? shardOfKey(route, own) : shardOfTarget(scope, route.parent, own);
}
