import { Utils, type CountOptions, type Dictionary, type EntityMetadata, type EntityName, type FilterQuery, type FindOptions } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { comparatorOf, concatPage, mergeSorted, pushDownLimit, sumCounts, type Merged } from './merge.ts';
import { entitySortKeys, rowSortKeys, type KeyDialect } from './order-by.ts';
import { traitsOf } from './platform-traits.ts';
import { ShardingError } from '../errors/errors.ts';
import { findBehindKeys, keysHidden } from './key-probe.ts';
import { mergePlan, refuseGrouping, type MergePlan } from './merge-plan.ts';
import type { PageWindow } from './page-window.ts';
import { firstOfEachRoot, repeatsRoots } from './root-rows.ts';
import { compiledQuery } from './compile.ts';
import { DEEP_OFFSET, findDeepPage } from './deep-page.ts';
import { runCompiled } from './execute.ts';
import { hasPopulate, materialize, runOnShards, unfiltered } from './shard-rows.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { settleEach } from '../fleet/settle.ts';
import { readOn } from '../routing/read-your-writes.ts';

type AnyFindOptions = FindOptions<any, any, any, any>;

/** Options `runCompiled` honours as `em.find` does (the connection, logging, abort signals). */
const RUN_OPTIONS = ['connectionType', 'logging', 'loggerContext', 'signal', 'inflightQueryAbortStrategy'];
/** Find options that rows can be merged under before they become entities; anything else takes the entity path. */
const ROW_MERGE_OPTIONS = new Set([
  'orderBy',
  'limit',
  'offset',
  'populate',
  'populateWhere',
  'populateOrderBy',
  'flushMode',
  'refresh',
  'strategy',
  'filters',
  ...RUN_OPTIONS,
]);
const ROW_COUNT_OPTIONS = new Set(['flushMode', 'filters', ...RUN_OPTIONS]);

/**
 * A query over several shards. Each shard runs it with `limit` = offset + limit and no offset; the pages are merged
 * in the global order, then skipped and cut. Where the query allows (see {@link rowMergeable}), the SQL is compiled
 * once, raw rows are merged, and only the rows that survive become entities, each on its own shard's fork.
 */
export async function fanOutFind<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: AnyFindOptions,
  shards: readonly ShardId[],
): Promise<T[]> {
  const meta = scope.meta<T>(entityName);
  const platform = scope.fork(shards[0]!).getPlatform();
  const plan = mergePlan(meta, options, platform);
  if (!plan) {
    return refusedByMikroOrm(scope, entityName, meta, where, options, shards);
  }
  const keyDialect = traitsOf(platform);
  const rowKeys =
    rowMergeable(meta, where, options) && (await unfiltered(scope, meta, where, options, shards)) ? rowSortKeys(meta, plan.terms, keyDialect) : undefined;
  if (!rowKeys) {
    return findEntities(scope, entityName, meta, where, options, shards, plan, keyDialect);
  }
  const { orderBy, terms, window } = plan;
  const repeats = repeatsRoots(meta, where);
  if (!repeats && terms.length > 0 && window.limit !== undefined && window.offset >= DEEP_OFFSET) {
    const page = await findDeepPage(scope, meta, where, orderBy, keyDialect, { ...options, offset: window.offset, limit: window.limit }, shards);
    if (page) {
      return page;
    }
  }
  const query = { where, orderBy, limit: pushDownLimit(window.offset, window.limit) };
  const lists = await runOnShards<Dictionary[]>(
    scope,
    'find',
    entityName as EntityName<object>,
    shards,
    options,
    (fork, compiled, shard) => runCompiled(fork, compiled, 'all', readOn(scope, shard, meta.class, options)) as Promise<Dictionary[]>,
    (fork, dialect) => compiledQuery(fork, meta, 'select', query, dialect),
  );
  const rows = repeats ? lists.map(list => firstOfEachRoot(meta, list)) : lists;
  const page = pageOf(rows, terms.length > 0 ? comparatorOf(rowKeys) : undefined, window);
  return materialize(scope, entityName, meta, page, shards, options, where);
}

/** Sums a count over several shards: a compiled `count(*)` per shard where possible, else `em.count` per shard. */
export async function fanOutCount<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: CountOptions<T, any>,
  shards: readonly ShardId[],
): Promise<number> {
  const meta = scope.meta<T>(entityName);
  refuseGrouping(meta, options);
  if (rowMergeable(meta, where, options, ROW_COUNT_OPTIONS) && (await unfiltered(scope, meta, where, options, shards))) {
    const counts = await runOnShards<Dictionary | undefined>(
      scope,
      'count',
      entityName as EntityName<object>,
      shards,
      options,
      (fork, compiled, shard) => runCompiled(fork, compiled, 'get', readOn(scope, shard, meta.class, options)) as Promise<Dictionary | undefined>,
      (fork, dialect) => compiledQuery(fork, meta, 'count', { where }, dialect),
    );
    return sumCounts(counts.map(row => row?.count as number | string | undefined));
  }
  const counts = await settleEach('count', shards, shard =>
    onReadyFork(scope, shard, fork => fork.count(entityName, where as never, readOn(scope, shard, meta.class, options))),
  );
  return sumCounts(counts);
}

/**
 * The general path: every shard hydrates its page with `em.find`, and the entities are merged. When the entities
 * would lack an order key, or relations are to be populated, the page is found on probe entities first.
 */
async function findEntities<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  where: FilterQuery<T>,
  options: AnyFindOptions,
  shards: readonly ShardId[],
  plan: MergePlan,
  keyDialect: KeyDialect,
): Promise<T[]> {
  const compare = plan.terms.length > 0 ? comparatorOf(entitySortKeys(meta, plan.terms, keyDialect)) : undefined;
  const merge = (lists: readonly (readonly T[])[]) => pageOf(lists, compare, plan.window);
  // Populating every shard's offset + limit entities would populate (and may fail on) rows outside the page.
  if (keysHidden(meta, plan.terms, options) || hasPopulate(options.populate)) {
    return findBehindKeys(scope, entityName, meta, where, options, shards, plan, merge);
  }
  const shardOptions = { ...options, orderBy: plan.orderBy, limit: pushDownLimit(plan.window.offset, plan.window.limit), offset: undefined } as AnyFindOptions;
  const lists = await settleEach('find', shards, shard =>
    onReadyFork(scope, shard, fork => fork.find(entityName, where as never, readOn(scope, shard, meta.class, shardOptions)) as Promise<T[]>),
  );
  return merge(lists).map(item => item.row);
}

function pageOf<Row>(lists: readonly (readonly Row[])[], compare: ((a: Row, b: Row) => number) | undefined, window: PageWindow): Merged<Row>[] {
  return compare ? mergeSorted(lists, compare, window.offset, window.limit) : concatPage(lists, window.offset, window.limit);
}

/**
 * A query MikroORM is expected to refuse (an unknown order key or direction, a limit the database rejects): every
 * shard runs it through MikroORM, so the user gets MikroORM's own error. A database may answer after all (an empty
 * result whose offset it never evaluated): no rows anywhere merge into none; rows cannot be merged: refuse.
 */
async function refusedByMikroOrm<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  where: FilterQuery<T>,
  options: AnyFindOptions,
  shards: readonly ShardId[],
): Promise<T[]> {
  const answers = await Promise.allSettled(
    shards.map(async shard =>
      onReadyFork(scope, shard, fork => fork.find(entityName, where as never, readOn(scope, shard, meta.class, options)) as Promise<T[]>),
    ),
  );
  const refused = answers.find(answer => answer.status === 'rejected');
  if (refused) {
    throw refused.reason;
  }
  if (answers.every(answer => (answer as PromiseFulfilledResult<T[]>).value.length === 0)) {
    return [];
  }
  throw ShardingError.unmergeableQuery(
    meta.className,
    `its orderBy, limit or offset (${describeOptions(options)}) cannot be merged; order by entity properties with 'asc'/'desc', and page with whole numbers.`,
    { orderBy: options.orderBy, limit: options.limit, offset: options.offset },
  );
}

function describeOptions(options: AnyFindOptions): string {
  try {
    return JSON.stringify({ orderBy: options.orderBy, limit: options.limit, offset: options.offset }).slice(0, 200);
  } catch {
    return 'unprintable';
  }
}

const rowReady = new WeakMap<EntityMetadata, boolean>();

/**
 * Whether raw rows of this query can be merged and then mapped exactly as `em.find` would map them: a plain
 * condition, only the options above, and an entity with no inheritance, formulas, lazy or SQL-converted
 * properties (those change the SELECT that `em.find` builds). Filters are checked per query by {@link unfiltered}.
 */
function rowMergeable(meta: EntityMetadata, where: unknown, options: object, allowed = ROW_MERGE_OPTIONS): boolean {
  if (where !== undefined && where !== null && !Utils.isPlainObject(where)) {
    return false;
  }
  for (const key of Object.keys(options)) {
    if (!allowed.has(key) && (options as Dictionary)[key] !== undefined) {
      return false;
    }
  }
  let ready = rowReady.get(meta);
  if (ready === undefined) {
    ready =
      !meta.virtual &&
      !meta.inheritanceType &&
      !meta.discriminatorColumn &&
      meta.props.every(prop => !prop.formula && !prop.lazy && !prop.customType?.convertToJSValueSQL && !prop.customType?.convertToDatabaseValueSQL);
    rowReady.set(meta, ready);
  }
  return ready;
}
