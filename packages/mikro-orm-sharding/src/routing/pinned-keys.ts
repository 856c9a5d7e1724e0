import { Reference, Utils, type Dictionary } from '@mikro-orm/core';
import { helperOf } from '../mikro-internals.ts';
import type { EntityRouting } from './shard-by.ts';

/**
 * The values a condition pins the shard key to, for a hand-written query chooser (`args.shardKeys`): `{ key: v }`,
 * `{ key: [..] }`, `$eq`, `$in`, inside `$and`; for an entity that follows a parent, the key of the entity at the top
 * of the chain, through the relation (`{ author: { tenantId: 't1' } }`, or `{ author: 5 }` when the author's key is
 * its id). Undefined when the condition does not pin the key to a list of values.
 */
export function pinnedKeyValues(route: EntityRouting, where: unknown): readonly unknown[] | undefined {
  if (!Utils.isPlainObject(where)) {
    return undefined;
  }
  const conditions = where as Dictionary;
  const value = conditions[route.property];
  if (value !== undefined) {
    const values = valuesOf(value);
    if (values === undefined || route.parent === undefined) {
      return values;
    }
    return keysOfParents(route.parent, values);
  }
  for (const part of Array.isArray(conditions.$and) ? conditions.$and : []) {
    const found = pinnedKeyValues(route, part);
    if (found) {
      return found;
    }
  }
  return undefined;
}

/** `v`, `[v, w]`, `{ $eq: v }`, `{ $in: [...] }`; undefined for any other condition. */
function valuesOf(value: unknown): readonly unknown[] | undefined {
  if (Array.isArray(value)) {
    return value;
  }
  if (!Utils.isPlainObject(value)) {
    return [value];
  }
  const operators = value as Dictionary;
  if ('$eq' in operators) {
    return [operators.$eq];
  }
  return Array.isArray(operators.$in) ? operators.$in : undefined;
}

/** The root keys of the parents these values name (primary keys, entities, or conditions on the parent). */
function keysOfParents(parent: EntityRouting, values: readonly unknown[]): readonly unknown[] | undefined {
  const keys: unknown[] = [];
  for (const value of values) {
    if (Utils.isPlainObject(value)) {
      const nested = pinnedKeyValues(parent, value);
      if (nested === undefined) {
        return undefined;
      }
      keys.push(...nested);
      continue;
    }
    const target = Utils.isEntity(value, true) ? (Reference.unwrapReference(value as object) as Dictionary) : undefined;
    const own = target === undefined ? undefined : target[parent.property];
    if (parent.parent !== undefined) {
      const above = own === undefined ? undefined : keysOfParents(parent.parent, [own]);
      if (above === undefined) {
        return undefined;
      }
      keys.push(...above);
    } else if (parent.keyIsPrimary) {
      keys.push(target === undefined ? value : helperOf(target)?.getPrimaryKey());
    } else if (own !== undefined) {
      keys.push(own);
    } else {
      return undefined;
    }
  }
  return keys;
}
