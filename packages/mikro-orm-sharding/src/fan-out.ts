import {
  QueryHelper,
  Utils,
  type CountOptions,
  type Dictionary,
  type EntityData,
  type EntityMetadata,
  type EntityName,
  type FilterQuery,
  type FindOptions,
} from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from './choosers.ts';
import { comparatorOf, concatPage, mergeSorted, pushDownLimit, sumCounts, type Merged } from './merge.ts';
import { entitySortKeys, nullsSortHigh, orderTerms, relationPaths, rowSortKeys, type OrderTerm } from './order-by.ts';
import { compiledQuery, type CompiledQuery } from './compile.ts';
import { runCompiled } from './execute.ts';
import type { ShardScope } from './scope.ts';
import { settleEach } from './settle.ts';

type AnyFindOptions = FindOptions<any, any, any, any>;

/** Find options that rows can be merged under before they become entities; anything else takes the entity path. */
const ROW_MERGE_OPTIONS = new Set(['orderBy', 'limit', 'offset', 'populate', 'populateWhere', 'populateOrderBy', 'flushMode', 'refresh', 'strategy', 'filters', 'connectionType']);
const ROW_COUNT_OPTIONS = new Set(['flushMode', 'filters', 'connectionType']);

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
  const orderBy = meta.orderBy ? QueryHelper.mergeOrderBy(options.orderBy, meta.orderBy) : options.orderBy;
  const terms = orderTerms(orderBy);
  const nullsHigh = nullsSortHigh(scope.fork(shards[0]!).getPlatform());
  const rowKeys = rowMergeable(meta, where, options) && (await unfiltered(scope, meta, where, options, shards)) ? rowSortKeys(meta, terms, nullsHigh) : undefined;
  if (rowKeys) {
    const query = { where, orderBy, limit: pushDownLimit(options.offset, options.limit) };
    const lists = await runOnShards<Dictionary[]>(scope, 'find', entityName as EntityName<object>, shards, options, (fork, compiled) =>
      runCompiled(fork, compiled, 'all', options.connectionType) as Promise<Dictionary[]>,
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
      runCompiled(fork, compiled, 'get', options.connectionType) as Promise<Dictionary | undefined>,
      (fork, dialect) => compiledQuery(fork, meta, 'count', { where }, dialect),
    );
    return sumCounts(counts.map(row => row?.count as number | string | undefined));
  }
  const counts = await settleEach('count', shards, shard => scope.fork(shard).count(entityName, where as never, options));
  return sumCounts(counts);
}

/**
 * Runs one compiled statement on each shard at once. Shards of one driver and one default schema share the compiled
 * SQL (a schema is part of the table names in it); each shard first auto-flushes what is pending for this entity, as
 * `em.find` does.
 */
async function runOnShards<R>(
  scope: ShardScope,
  operation: string,
  entityName: EntityName<object>,
  shards: readonly ShardId[],
  options: { flushMode?: unknown },
  execute: (fork: SqlEntityManager, compiled: CompiledQuery) => Promise<R>,
  compile: (fork: SqlEntityManager, dialect: string) => CompiledQuery,
): Promise<R[]> {
  const byDialect = new Map<string, CompiledQuery>();
  return settleEach(operation, shards, async shard => {
    const fork = scope.fork(shard);
    await fork.tryFlush(entityName, { flushMode: options.flushMode as never });
    const dialect = `${fork.getPlatform().constructor.name}\0${fork.schema ?? fork.config.get('schema') ?? ''}`;
    let compiled = byDialect.get(dialect);
    if (!compiled) {
      compiled = compile(fork, dialect);
      byDialect.set(dialect, compiled);
    }
    return execute(fork, compiled);
  });
}

/** Turns the surviving rows into managed entities on their own shards' forks, then populates per shard. */
async function materialize<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  page: readonly Merged<Dictionary>[],
  shards: readonly ShardId[],
  options: AnyFindOptions,
): Promise<T[]> {
  const perShard = new Map<ShardId, T[]>();
  const entities = page.map(({ source, row }) => {
    const shard = shards[source]!;
    const fork = scope.fork(shard);
    const data = fork.getDriver().mapResult(row as EntityData<T>, meta) as EntityData<T>;
    const entity = fork.getEntityFactory().create(entityName, data, { merge: true, refresh: options.refresh, convertCustomTypes: true }) as T;
    const list = perShard.get(shard);
    if (list) {
      list.push(entity);
    } else {
      perShard.set(shard, [entity]);
    }
    return entity;
  });
  await Promise.all(
    [...perShard].map(async ([shard, list]) => {
      const fork = scope.fork(shard);
      if (hasPopulate(options.populate)) {
        await fork.populate(list, options.populate as never, {
          where: options.populateWhere,
          orderBy: options.populateOrderBy,
          refresh: options.refresh,
        } as never);
      }
      await fork.getUnitOfWork().dispatchOnLoadEvent();
    }),
  );
  return entities;
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

/**
 * Whether no filter applies to this query on any of its shards (config, entity, or added to one shard's fork with
 * `em.on(shard).addFilter()`, honouring `options.filters`). MikroORM returns the condition itself when none does.
 */
async function unfiltered(scope: ShardScope, meta: EntityMetadata, where: unknown, options: { filters?: unknown }, shards: readonly ShardId[]): Promise<boolean> {
  for (const shard of shards) {
    const filtered = await scope.fork(shard).applyFilters(meta.class, where as never, options.filters as never, 'read');
    if (filtered !== where) {
      return false;
    }
  }
  return true;
}

function hasPopulate(populate: unknown): boolean {
  return populate === true || (Array.isArray(populate) && populate.length > 0) || (typeof populate === 'string' && populate !== '');
}

function asList(populate: unknown): string[] {
  return Array.isArray(populate) ? (populate as string[]) : populate === undefined || populate === false ? [] : [populate as string];
}
