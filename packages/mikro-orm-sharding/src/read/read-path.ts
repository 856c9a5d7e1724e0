import { Utils, type CountOptions, type EntityName, type FilterQuery, type FindOneOptions, type FindOptions } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { isEmptyCondition } from './empty-condition.ts';
import { fanOutCount, fanOutFind } from './fan-out.ts';
import { sumCounts } from './merge.ts';
import { settleEach } from '../fleet/settle.ts';
import { ShardingError } from '../errors/errors.ts';
import { onShard } from '../errors/shard-failure.ts';
import { findInCandidates, primaryKeyOf } from './lookup.ts';
import { checkEntityOnShard } from '../route.ts';
import { shardsOfQuery } from '../routing/resolve.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { readPartially, type OnShardError } from './partial.ts';
import { isReadOnly } from '../routing/read-only.ts';
import { markWritten, readOn } from '../routing/read-your-writes.ts';
import { isBroadcast } from '../routing/broadcast.ts';
import { writeOnEveryShard } from '../broadcast/writes.ts';

type Find = FindOptions<any, any, any, any>;

/**
 * The read side of the facade. Every read first places pending entities on their shards, so that each shard's own
 * auto-flush writes them before it answers, as one MikroORM entity manager would (and awaits nothing when none wait).
 */
export async function find<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: Find,
  shard: ShardId | undefined,
  onShardError?: OnShardError,
): Promise<T[]> {
  const shards = await shardsToRead(scope, 'find', entityName, where, options, shard);
  if (shards.length === 1) {
    return onShard(
      'find',
      shards[0]!,
      onReadyFork(scope, shards[0]!, fork => fork.find(entityName, where as never, readOn(scope, shards[0]!, entityName, options)) as Promise<T[]>),
    );
  }
  return readPartially(scope.orm.faults, 'find', onShardError, shards, living => fanOutFind(scope, entityName, where, options, living));
}

/** By primary key: identity maps, then the id chooser's candidates in order; otherwise the first row of a query. */
export function findOne<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: FindOneOptions<T, any, any, any>,
  shard: ShardId | undefined,
): Promise<T | null> {
  // Not async: a lookup by primary key is the hottest read, and each async layer costs promise turns.
  const placing = scope.placePending?.();
  if (placing) {
    // Once placed, nothing is pending: the second call goes straight on.
    return placing.then(() => findOne(scope, entityName, where, options, shard));
  }
  if (shard !== undefined) {
    checkEntityOnShard(scope, entityName, shard, 'the { shard } option', false);
  }
  const known = shard ?? (Utils.isEntity(where, true) ? scope.shardOf(where as object) : undefined);
  if (known !== undefined) {
    return onShard(
      'findOne',
      known,
      onReadyFork(
        scope,
        known,
        fork => fork.findOne(entityName, where as never, readOn(scope, known, entityName, options)) as Promise<T | null>,
        'the { shard } option',
      ),
    );
  }
  const pk = primaryKeyOf(scope.meta(entityName), where);
  if (pk !== undefined) {
    return findInCandidates(
      scope,
      entityName as EntityName<object>,
      pk,
      (fork, id) => fork.findOne(entityName, where as never, readOn(scope, id, entityName, options)) as Promise<T | null>,
    );
  }
  return findOneByQuery(scope, entityName, where, options);
}

async function findOneByQuery<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: FindOneOptions<T, any, any, any>,
): Promise<T | null> {
  const shards = await readShards(scope, 'findOne', entityName, where, options, undefined);
  if (shards.length === 1) {
    return onShard(
      'findOne',
      shards[0]!,
      onReadyFork(scope, shards[0]!, fork => fork.findOne(entityName, where as never, readOn(scope, shards[0]!, entityName, options)) as Promise<T | null>),
    );
  }
  const refusing = await shardRefusingEmpty(scope, entityName, where, options, shards);
  if (refusing !== undefined) {
    // MikroORM refuses an empty condition with its own error, as one database would; no shard failed.
    return onReadyFork(scope, refusing, fork => fork.findOne(entityName, where as never, options) as Promise<T | null>);
  }
  const [first] = await fanOutFind(scope, entityName, where, { ...options, limit: 1 } as Find, shards);
  return first ?? null;
}

/**
 * MikroORM refuses a `findOne` whose condition is empty once filters are applied (`findOne(Session, token && { token })`
 * must not hand out any session): the first shard on which it would, if the condition is empty.
 */
async function shardRefusingEmpty<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: unknown,
  options: FindOneOptions<T, any, any, any>,
  shards: readonly ShardId[],
): Promise<ShardId | undefined> {
  const meta = scope.meta(entityName);
  if (!isEmptyCondition(where) || (meta.root.inheritanceType === 'sti' && meta.discriminatorValue !== undefined)) {
    return undefined;
  }
  for (const shard of shards) {
    const filtered = await scope.fork(shard).applyFilters(entityName, {}, options.filters, 'read', options as never);
    if (isEmptyCondition(filtered)) {
      return shard;
    }
  }
  return undefined;
}

/** A page and the total, both over the same shards. */
export async function findAndCount<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: Find,
  shard: ShardId | undefined,
  onShardError?: OnShardError,
): Promise<[T[], number]> {
  const shards = await shardsToRead(scope, 'findAndCount', entityName, where, options, shard);
  if (shards.length === 1) {
    return onShard(
      'findAndCount',
      shards[0]!,
      onReadyFork(
        scope,
        shards[0]!,
        fork => fork.findAndCount(entityName, where as never, readOn(scope, shards[0]!, entityName, options)) as Promise<[T[], number]>,
      ),
    );
  }
  const { filters, schema, flushMode, connectionType, logging, loggerContext, signal, inflightQueryAbortStrategy } = options;
  const countOptions = { filters, schema, flushMode, connectionType, logging, loggerContext, signal, inflightQueryAbortStrategy };
  return readPartially(scope.orm.faults, 'findAndCount', onShardError, shards, living =>
    Promise.all([fanOutFind(scope, entityName, where, options, living), fanOutCount(scope, entityName, where, countOptions, living)]),
  );
}

/** Counts, summed over the shards. */
export async function count<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: CountOptions<T, any>,
  shard: ShardId | undefined,
  onShardError?: OnShardError,
): Promise<number> {
  const shards = await shardsToRead(scope, 'count', entityName, where, options, shard);
  if (shards.length === 1) {
    return onShard(
      'count',
      shards[0]!,
      onReadyFork(scope, shards[0]!, fork => fork.count(entityName, where as never, readOn(scope, shards[0]!, entityName, options))),
    );
  }
  return readPartially(scope.orm.faults, 'count', onShardError, shards, living => fanOutCount(scope, entityName, where, options, living));
}

/**
 * Updates or deletes rows by condition on the query chooser's shards at once, without the unit of work; returns
 * the rows affected, summed. Each shard's statement commits on its own: a failure names the shards that changed rows.
 */
export async function nativeWrite<T extends object>(
  scope: ShardScope,
  operation: 'nativeUpdate' | 'nativeDelete',
  entityName: EntityName<T>,
  where: FilterQuery<T>,
  options: object,
  shard: ShardId | undefined,
  write: (fork: SqlEntityManager) => Promise<number>,
): Promise<number> {
  if (shard === undefined && scope.orm.shardKeys.hasBroadcast && isBroadcast(scope.orm, scope.meta(entityName))) {
    // Every shard's copy, in one transaction; one shard's count, as one database would answer.
    const placing = scope.placePending?.();
    if (placing) {
      await placing;
    }
    return writeOnEveryShard(scope, operation, entityName as EntityName<object>, write);
  }
  const shards = await shardsToRead(scope, operation, entityName, where, options, shard);
  const readOnly = shards.find(id => isReadOnly(scope.orm.fleet, id));
  if (readOnly !== undefined) {
    throw ShardingError.readOnlyShard(operation, Utils.className(entityName), readOnly, shard === undefined ? 'the query routing' : 'the { shard } option');
  }
  const affected = await settleEach(
    operation,
    shards,
    id => onReadyFork(scope, id, write),
    rows => rows > 0,
  );
  markWritten(
    scope,
    shards.filter((_, i) => affected[i]! > 0),
  );
  return sumCounts(affected);
}

/** Places pending entities (if any wait), then names the shards to read. */
async function shardsToRead<T extends object>(
  scope: ShardScope,
  operation: string,
  entityName: EntityName<T>,
  where: unknown,
  options: object,
  shard: ShardId | undefined,
): Promise<readonly ShardId[]> {
  const placing = scope.placePending?.();
  if (placing) {
    await placing;
  }
  return readShards(scope, operation, entityName, where, options, shard);
}

/**
 * The shards a query reads: the explicit `{ shard }`, else the entity's bind or the pinned shard, else the query
 * chooser's or the `shardBy` declaration's, else every shard.
 */
async function readShards<T extends object>(
  scope: ShardScope,
  operation: string,
  entityName: EntityName<T>,
  where: unknown,
  options: object,
  shard: ShardId | undefined,
): Promise<readonly ShardId[]> {
  if (shard !== undefined) {
    scope.fork(shard, 'the { shard } option');
    checkEntityOnShard(scope, entityName, shard, 'the { shard } option', false);
    return [shard];
  }
  return shardsOfQuery(scope, scope.meta(entityName), where, options, operation);
}
