import { helper, Utils, type Dictionary, type EntityMetadata, type EntityName, type FilterQuery, type FindOptions } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { isEmptyCondition } from './empty-condition.ts';
import { groupInto } from '../group.ts';
import { pushDownLimit, type Merged } from './merge.ts';
import type { MergePlan } from './merge-plan.ts';
import { keyLoadPaths, type OrderTerm } from './order-by.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { settleEach } from '../fleet/settle.ts';
import { readOn } from '../routing/read-your-writes.ts';

type AnyFindOptions = FindOptions<any, any, any, any>;

/**
 * Whether the entities a query loads lack an order key: `fields`/`exclude` leave it out, or it lies behind a relation
 * or in a lazy property. Loading it anyway would hand the user more than MikroORM does (a populated relation, a
 * column they excluded), so such pages are found on probe entities first (see {@link findBehindKeys}).
 */
export function keysHidden(meta: EntityMetadata, terms: readonly OrderTerm[], options: AnyFindOptions): boolean {
  if (terms.length === 0) {
    return false;
  }
  if (keyLoadPaths(meta, terms).length > 0) {
    return true;
  }
  const fields = (options.fields ?? []) as readonly unknown[];
  const exclude = (options.exclude ?? []) as readonly unknown[];
  return terms.some(term => {
    const name = term.path[0]!;
    if (meta.primaryKeys.includes(name)) {
      return false;
    }
    const path = term.path.join('.');
    const selected = fields.length === 0 || fields.includes(name) || fields.includes(path);
    const excluded = exclude.some(field => field === name || field === path || (typeof field === 'string' && field.startsWith(`${name}.`)));
    return !selected || excluded;
  });
}

/**
 * A page whose order keys the query does not load, or whose relations are to be populated, in two passes. Each shard
 * first loads its `offset + limit` rows as throwaway probe entities on a fork of its own (every column, and the
 * relations the keys need), which `merge` puts in the global order and pages; then each shard loads its own
 * entities of the page exactly as the query asks, so only they become managed and populated. Between the passes
 * rows must not move: under concurrent writes a page can miss a row, as offset paging can.
 */
export async function findBehindKeys<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  where: FilterQuery<T>,
  options: AnyFindOptions,
  shards: readonly ShardId[],
  plan: MergePlan,
  merge: (lists: readonly (readonly T[])[]) => Merged<T>[],
): Promise<T[]> {
  const probeOptions = {
    ...options,
    fields: undefined,
    exclude: undefined,
    populate: keyLoadPaths(meta, plan.terms),
    populateWhere: undefined,
    populateOrderBy: undefined,
    cache: undefined,
    orderBy: plan.orderBy,
    limit: pushDownLimit(plan.window.offset, plan.window.limit),
    offset: undefined,
  } as AnyFindOptions;
  const lists = await settleEach('find', shards, shard =>
    onReadyFork(scope, shard, async fork => {
      // The probe fork holds nothing to flush: this fork writes what it holds first, as its own find would.
      await fork.tryFlush(entityName, { flushMode: options.flushMode });
      return fork.fork({ keepTransactionContext: true }).find(entityName, where as never, readOn(scope, shard, meta.class, probeOptions)) as Promise<T[]>;
    }),
  );
  const page = merge(lists);
  const wanted = new Map<ShardId, T[]>();
  for (const { source, row } of page) {
    groupInto(wanted, shards[source]!, row);
  }
  const pageOptions = { ...options, orderBy: plan.orderBy, limit: undefined, offset: undefined } as AnyFindOptions;
  const pageShards = [...wanted.keys()];
  const loaded = await settleEach('find', pageShards, shard =>
    onReadyFork(scope, shard, async fork => {
      const found = (await fork.find(entityName, onlyThese(meta, where, wanted.get(shard)!) as never, readOn(scope, shard, meta.class, pageOptions))) as T[];
      return new Map(found.map(entity => [helper(entity).getSerializedPrimaryKey(), entity]));
    }),
  );
  const byShard = new Map(pageShards.map((shard, i) => [shard, loaded[i]!]));
  return page.flatMap(({ source, row }) => byShard.get(shards[source]!)?.get(helper(row).getSerializedPrimaryKey()) ?? []);
}

/** The query's condition narrowed to the given entities' primary keys (kept as a condition for `populateWhere`). */
function onlyThese(meta: EntityMetadata, where: unknown, entities: readonly object[]): unknown {
  const keys =
    meta.primaryKeys.length === 1
      ? { [meta.primaryKeys[0]!]: { $in: entities.map(entity => helper(entity).getPrimaryKey()) } }
      : {
          $or: entities.map(entity => {
            const values = helper(entity).getPrimaryKeys() ?? [];
            return Object.fromEntries(meta.primaryKeys.map((pk, i) => [pk, values[i]]));
          }),
        };
  if (isEmptyCondition(where)) {
    return keys;
  }
  if (Utils.isPlainObject(where) && ((where as Dictionary).$and === undefined || Array.isArray((where as Dictionary).$and))) {
    return { ...where, $and: [...(((where as Dictionary).$and as unknown[] | undefined) ?? []), keys] };
  }
  return { $and: [where, keys] };
}
