import { PopulateHint, Utils, type Dictionary, type EntityMetadata, type EntityName, type FindOptions } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { CompiledQuery } from './compile.ts';
import type { Merged } from './merge.ts';
import type { ShardScope } from '../scope.ts';
import { groupInto } from '../group.ts';
import { applyReadFilters, autoFlush, dispatchOnLoad, entityFromRow } from '../mikro-internals.ts';
import { settleEach } from '../fleet/settle.ts';
import { readOn } from '../routing/read-your-writes.ts';

/** The per-shard steps of the fast fan-out path, shared by ordinary and deep pages. */

/**
 * What decides a query's SQL text beyond the query: the driver's dialect, the default schema and the table names
 * (table-suffix shards map one entity to a table each).
 */
export function dialectOf(fork: SqlEntityManager): string {
  return `${fork.getPlatform().constructor.name}\0${fork.schema ?? fork.config.get('schema') ?? ''}\0${tableNamesOf(fork)}`;
}

const tableNames = new WeakMap<object, number>();
const mappings = new Map<string, number>();

/** A number per distinct mapping of entities to tables, computed once per shard: metadata does not change after init. */
function tableNamesOf(fork: SqlEntityManager): number {
  let id = tableNames.get(fork.config);
  if (id === undefined) {
    const mapping = [...fork.getMetadata()]
      .map(meta => `${meta.className}=${meta.tableName}`)
      .sort()
      .join(',');
    id = mappings.get(mapping) ?? mappings.size;
    mappings.set(mapping, id);
    tableNames.set(fork.config, id);
  }
  return id;
}

type AnyFindOptions = FindOptions<any, any, any, any>;

/**
 * Runs one compiled statement on each shard at once. Shards of one driver and one default schema share the compiled
 * SQL (a schema is part of the table names in it); each shard first auto-flushes what is pending for this entity, as
 * `em.find` does.
 */
export async function runOnShards<R>(
  scope: ShardScope,
  operation: string,
  entityName: EntityName<object>,
  shards: readonly ShardId[],
  options: { flushMode?: unknown },
  execute: (fork: SqlEntityManager, compiled: CompiledQuery, shard: ShardId) => Promise<R>,
  compile: (fork: SqlEntityManager, dialect: string) => CompiledQuery,
): Promise<R[]> {
  const byDialect = new Map<string, CompiledQuery>();
  return settleEach(operation, shards, async shard => {
    const fork = scope.fork(shard);
    const ready = scope.ready(shard);
    if (ready) {
      await ready;
    }
    await autoFlush(fork, entityName, options.flushMode);
    const dialect = dialectOf(fork);
    let compiled = byDialect.get(dialect);
    if (!compiled) {
      compiled = compile(fork, dialect);
      byDialect.set(dialect, compiled);
    }
    return execute(fork, compiled, shard);
  });
}

/**
 * Turns the surviving rows into managed entities on their own shards' forks, then populates per shard as `em.find`
 * does: `populateWhere` (`'infer'` narrows children by the query's own condition) and the query's order for them.
 */
export async function materialize<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  page: readonly Merged<Dictionary>[],
  shards: readonly ShardId[],
  options: AnyFindOptions,
  where: unknown,
): Promise<T[]> {
  const perShard = new Map<ShardId, T[]>();
  const entities = page.map(({ source, row }) => {
    const shard = shards[source]!;
    const fork = scope.fork(shard);
    const entity = entityFromRow(fork, entityName, meta, row, options.refresh);
    groupInto(perShard, shard, entity);
    return entity;
  });
  await settleEach('find', [...perShard.keys()], async shard => {
    const fork = scope.fork(shard);
    const ready = scope.ready(shard);
    if (ready) {
      await ready;
    }
    const list = perShard.get(shard)!;
    if (hasPopulate(options.populate)) {
      const populateWhere = populateCondition(where, options.populateWhere ?? fork.config.get('populateWhere'));
      await fork.populate(
        list,
        options.populate as never,
        {
          ...readOn(scope, shard, entityName as EntityName<object>, options),
          where: populateWhere,
          populateWhere,
          orderBy: options.populateOrderBy ?? options.orderBy,
          ignoreLazyScalarProperties: true,
          lookup: false,
        } as never,
      );
    }
    await dispatchOnLoad(fork);
  });
  return entities;
}

/**
 * Whether no filter applies to this query on any of its shards (config, entity, or added to one shard's fork with
 * `em.on(shard).addFilter()`, honouring `options.filters`). MikroORM returns the condition itself when none does.
 */
export async function unfiltered(
  scope: ShardScope,
  meta: EntityMetadata,
  where: unknown,
  options: { filters?: unknown },
  shards: readonly ShardId[],
): Promise<boolean> {
  for (const shard of shards) {
    const filtered = await applyReadFilters(scope.fork(shard), meta.class, where, options.filters);
    if (filtered !== where) {
      return false;
    }
  }
  return true;
}

/** The condition `em.find` narrows populated relations by: none for `'all'`, the query's for `'infer'`, else the given one. */
function populateCondition(where: unknown, hint: unknown): Dictionary {
  const condition: Dictionary = {};
  if (hint === PopulateHint.INFER) {
    Utils.merge(condition, where ?? {});
  } else if (typeof hint === 'object' && hint !== null) {
    Utils.merge(condition, hint);
  }
  return condition;
}

export function hasPopulate(populate: unknown): boolean {
  return populate === true || (Array.isArray(populate) && populate.length > 0) || (typeof populate === 'string' && populate !== '');
}
