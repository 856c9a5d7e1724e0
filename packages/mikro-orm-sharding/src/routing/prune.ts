import { Utils, type Dictionary } from '@mikro-orm/core';
import type { MaybePromise, ShardId } from '../choosers.ts';
import type { ShardScope } from '../scope.ts';
import type { KeyRange } from '../strategies/strategy.ts';
import { shardOfKey, shardOfPrimaryKey, shardOfTarget } from './key-shards.ts';
import type { EntityRouting } from './shard-by.ts';

/** The shards a condition can find rows on: a list (possibly empty: nothing can match), or every shard. */
export type ShardSet = readonly ShardId[] | 'all';

/**
 * The shards that can hold rows matching `where`, from what it pins of the entity's shard key: `{ key: v }`,
 * `$eq`, `$in`, bounds (for strategies that keep ranges), `$and` (intersected), `$or` (united), the parent relation
 * (`{ author: 5 }`, `{ author: { tenantId: 't1' } }`, an entity), and the primary key when it tells the shard.
 * Anything else (`$ne`, `$not`, `$like`, other properties) constrains nothing, so the answer errs towards more
 * shards, never fewer. A condition without the key returns at once, allocating nothing: most queries are such.
 */
export function shardsOfWhere(scope: ShardScope, route: EntityRouting, where: unknown): MaybePromise<ShardSet> {
  if (where === null || typeof where !== 'object') {
    return Utils.isPrimaryKey(where) ? point(shardOfPrimaryKey(route, where)) : 'all';
  }
  if (Array.isArray(where)) {
    // `find(Author, [1, 2])`: primary keys.
    return unite(where.map(pk => point(shardOfPrimaryKey(route, pk))));
  }
  if (Utils.isEntity(where, true)) {
    return point(shardOfTarget(scope, route, where));
  }
  const conditions = where as Dictionary;
  let result: MaybePromise<ShardSet> = 'all';
  for (const name in conditions) {
    const value = conditions[name];
    let part: MaybePromise<ShardSet>;
    if (name === route.property) {
      part = route.parent === undefined ? keyCondition(route, value, shardOfKey, true) : relationCondition(scope, route.parent, value);
    } else if (name === route.primaryKey && route.ids !== undefined) {
      part = keyCondition(route, value, shardOfPrimaryKey, false);
    } else if (name === '$and' && Array.isArray(value)) {
      part = intersectAll(value.map(item => shardsOfWhere(scope, route, item)));
    } else if (name === '$or' && Array.isArray(value) && value.length > 0) {
      part = unite(value.map(item => shardsOfWhere(scope, route, item)));
    } else {
      continue;
    }
    result = intersect(result, part);
  }
  return result;
}

type Point = (route: EntityRouting, value: unknown) => MaybePromise<ShardId | undefined>;

/**
 * What a condition on a scalar that decides the shard pins: a value, a list (`$in`), `$eq`, bounds. `ranged` says
 * whether bounds may go to the strategy (not for ids, whose order is not their bucket's).
 */
function keyCondition(route: EntityRouting, value: unknown, at: Point, ranged: boolean): MaybePromise<ShardSet> {
  if (value === null || value === undefined) {
    return 'all';
  }
  if (Array.isArray(value)) {
    return unite(value.map(item => point(at(route, item))));
  }
  if (!Utils.isPlainObject(value)) {
    return point(at(route, value));
  }
  let result: MaybePromise<ShardSet> = 'all';
  let bounds: { -readonly [K in keyof KeyRange]: unknown } | undefined;
  for (const operator in value) {
    const operand = (value as Dictionary)[operator];
    switch (operator) {
      case '$eq':
        result = intersect(result, operand === null ? 'all' : point(at(route, operand)));
        break;
      case '$in':
        if (Array.isArray(operand)) {
          result = intersect(result, unite(operand.map(item => point(at(route, item)))));
        }
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        if (ranged && operand !== null && operand !== undefined) {
          (bounds ??= {})[operator.slice(1) as keyof KeyRange] = operand;
        }
        break;
      default:
      // Other operators only narrow what matches further: they pin nothing.
    }
  }
  const strategy = route.root.strategy!;
  if (bounds !== undefined && strategy.shardsForRange) {
    result = intersect(result, strategy.shardsForRange(bounds, route.context));
  }
  return result;
}

/**
 * What a condition on the relation to the entity a child follows pins: its primary key (a value, a list, `$eq`,
 * `$in`, bounds when it is a range key), an entity or reference, or a condition on it (`{ tenantId: 't1' }`).
 */
function relationCondition(scope: ShardScope, parent: EntityRouting, value: unknown): MaybePromise<ShardSet> {
  if (value === null || value === undefined) {
    return 'all';
  }
  if (Array.isArray(value)) {
    return unite(value.map(item => point(shardOfTarget(scope, parent, item))));
  }
  if (!Utils.isPlainObject(value)) {
    return point(shardOfTarget(scope, parent, value));
  }
  // Operators on the parent's primary key (`{ $in: [1, 2] }`) and conditions on its properties may be mixed.
  const onKey = parent.keyIsPrimary || parent.ids !== undefined ? keyCondition(parent, value, shardOfPrimaryKey, parent.ids === undefined) : 'all';
  return intersect(onKey, shardsOfWhere(scope, parent, value));
}

function point(shard: MaybePromise<ShardId | undefined>): MaybePromise<ShardSet> {
  if (shard instanceof Promise) {
    return shard.then(point);
  }
  return shard === undefined ? 'all' : [shard];
}

function intersect(a: MaybePromise<ShardSet>, b: MaybePromise<ShardSet>): MaybePromise<ShardSet> {
  if (a instanceof Promise || b instanceof Promise) {
    return Promise.all([a, b]).then(([x, y]) => intersect(x, y));
  }
  if (a === 'all') {
    return b;
  }
  if (b === 'all') {
    return a;
  }
  return a.filter(shard => b.includes(shard));
}

function intersectAll(parts: readonly MaybePromise<ShardSet>[]): MaybePromise<ShardSet> {
  return parts.reduce<MaybePromise<ShardSet>>((result, part) => intersect(result, part), 'all');
}

/** The shards of any of the parts (`$or`, `$in`); every shard once one part can be anywhere. An empty list matches nothing. */
function unite(parts: readonly MaybePromise<ShardSet>[]): MaybePromise<ShardSet> {
  if (parts.some(part => part instanceof Promise)) {
    return Promise.all(parts).then(unite);
  }
  const shards: ShardId[] = [];
  for (const part of parts as readonly ShardSet[]) {
    if (part === 'all') {
      return 'all';
    }
    for (const shard of part) {
      if (!shards.includes(shard)) {
        shards.push(shard);
      }
    }
  }
  return shards;
}
