import {
  Utils,
  type CountOptions,
  type Dictionary,
  type EntityMetadata,
  type EntityName,
  type FilterQuery,
  type FindOptions,
} from '@mikro-orm/core';
import type { ShardId } from './choosers.ts';
import { comparatorOf, concatPage, mergeSorted, pushDownLimit, sumCounts, type Merged } from './merge.ts';
import { entitySortKeys, nullsSortHigh, orderTerms, relationPaths, rowSortKeys, type OrderTerm } from './order-by.ts';
import { compiledQuery } from './compile.ts';
import { DEEP_OFFSET, findDeepPage } from './deep-page.ts';
import { runCompiled } from './execute.ts';
import { mergeOrderBy } from './mikro-internals.ts';
import { materialize, runOnShards, unfiltered } from './shard-rows.ts';
import type { ShardScope } from './scope.ts';
import { settleEach } from './settle.ts';

type AnyFindOptions = FindOptions<any, any, any, any>;

/** Options `runCompiled` honours as `em.find` does (the connection, logging, abort signals). */
const RUN_OPTIONS = ['connectionType', 'logging', 'loggerContext', 'signal', 'inflightQueryAbortStrategy'];
/** Find options that rows can be merged under before they become entities; anything else takes the entity path. */
const ROW_MERGE_OPTIONS = new Set(['orderBy', 'limit', 'offset', 'populate', 'populateWhere', 'populateOrderBy', 'flushMode', 'refresh', 'strategy', 'filters', ...RUN_OPTIONS]);
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
  const orderBy = meta.orderBy ? mergeOrderBy(options.orderBy, meta.orderBy) : options.orderBy;
  const terms = orderTerms(orderBy);
  const nullsHigh = nullsSortHigh(scope.fork(shards[0]!).getPlatform());
  const rowKeys = rowMergeable(meta, where, options) && (await unfiltered(scope, meta, where, options, shards)) ? rowSortKeys(meta, terms, nullsHigh) : undefined;
  if (rowKeys) {
    const { offset, limit } = options;
    if (terms.length > 0 && limit !== undefined && limit >= 0 && offset !== undefined && offset >= DEEP_OFFSET) {
      const page = await findDeepPage(scope, meta, where, orderBy, nullsHigh, { ...options, offset, limit }, shards);
      if (page) {
        return page;
      }
    }
    const query = { where, orderBy, limit: pushDownLimit(options.offset, options.limit) };
    const lists = await runOnShards<Dictionary[]>(scope, 'find', entityName as EntityName<object>, shards, options, (fork, compiled) =>
      runCompiled(fork, compiled, 'all', options) as Promise<Dictionary[]>,
      (fork, dialect) => compiledQuery(fork, meta, 'select', query, dialect),
    );
    const page = pageOf(lists, terms.length > 0 ? comparatorOf(rowKeys) : undefined, options);
    return materialize(scope, entityName, meta, page, shards, options);
  }
  return findEntities(scope, entityName, meta, where, options, shards, orderBy, terms, nullsHigh);
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
  if (rowMergeable(meta, where, options, ROW_COUNT_OPTIONS) && (await unfiltered(scope, meta, where, options, shards))) {
    const counts = await runOnShards<Dictionary | undefined>(scope, 'count', entityName as EntityName<object>, shards, options, (fork, compiled) =>
      runCompiled(fork, compiled, 'get', options) as Promise<Dictionary | undefined>,
      (fork, dialect) => compiledQuery(fork, meta, 'count', { where }, dialect),
    );
    return sumCounts(counts.map(row => row?.count as number | string | undefined));
  }
  const counts = await settleEach('count', shards, shard => scope.fork(shard).count(entityName, where as never, options));
  return sumCounts(counts);
}



/** The general path: every shard hydrates its page with `em.find`, and the entities are merged. */
async function findEntities<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  where: FilterQuery<T>,
  options: AnyFindOptions,
  shards: readonly ShardId[],
  orderBy: unknown,
  terms: readonly OrderTerm[],
  nullsHigh: boolean,
): Promise<T[]> {
  const keys = entitySortKeys(meta, terms, nullsHigh);
  // Order paths through relations must be loaded to compare entities by them.
  const through = relationPaths(terms);
  const populate = through.length > 0 ? [...asList(options.populate), ...through] : options.populate;
  const shardOptions = { ...options, orderBy, populate, limit: pushDownLimit(options.offset, options.limit), offset: undefined } as AnyFindOptions;
  const lists = await settleEach('find', shards, shard => scope.fork(shard).find(entityName, where as never, shardOptions) as Promise<T[]>);
  return pageOf(lists, terms.length > 0 ? comparatorOf(keys) : undefined, options).map(item => item.row);
}

function pageOf<Row>(lists: readonly (readonly Row[])[], compare: ((a: Row, b: Row) => number) | undefined, options: AnyFindOptions): Merged<Row>[] {
  const offset = options.offset ?? 0;
  const limit = options.limit === undefined || options.limit < 0 ? undefined : options.limit;
  return compare ? mergeSorted(lists, compare, offset, limit) : concatPage(lists, offset, limit);
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


function asList(populate: unknown): string[] {
  return Array.isArray(populate) ? (populate as string[]) : populate === undefined || populate === false ? [] : [populate as string];
}
