import { Utils, type EntityMetadata, type EntityName, type Primary } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { callChooser, checkShards, describeEntityName } from '../route.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import { entityHelper } from '../mikro-internals.ts';
import { onShard } from '../errors/shard-failure.ts';

/**
 * The primary key a `findOne` condition asks for, or undefined when it is a query: `5`, `[1, 2]` (composite),
 * an entity or reference, or `{ id: 5 }` with exactly the primary key properties as plain values.
 */
export function primaryKeyOf<T extends object>(meta: EntityMetadata<T>, where: unknown): Primary<T> | undefined {
  if (Utils.isPrimaryKey(where, meta.primaryKeys.length > 1)) {
    return where as Primary<T>;
  }
  if (Utils.isEntity(where, true)) {
    const wrapped = entityHelper(where as object);
    return wrapped.hasPrimaryKey() ? (wrapped.getPrimaryKey() as Primary<T>) : undefined;
  }
  if (!Utils.isPlainObject(where)) {
    return undefined;
  }
  const keys = Object.keys(where);
  if (keys.length !== meta.primaryKeys.length || !meta.primaryKeys.every(pk => keys.includes(pk))) {
    return undefined;
  }
  const values = meta.primaryKeys.map(pk => (where as Record<string, unknown>)[pk]);
  if (!values.every(value => Utils.isPrimaryKey(value))) {
    return undefined;
  }
  return (values.length === 1 ? values[0] : values) as Primary<T>;
}

/** The shard whose fork already manages this entity, if any: identity maps answer before any database does. */
export function shardInIdentityMaps(scope: ShardScope, entityName: EntityName<object>, pk: Primary<object>): ShardId | undefined {
  if (scope.forks.size === 0) {
    return undefined;
  }
  const knowing = shardsKnowing(scope.orm, entityName);
  for (const [shard, fork] of scope.forks) {
    // Shards may hold only some entities (main + warehouse); a shard without this one cannot have it.
    if (!knowing.has(shard)) {
      continue;
    }
    if (fork.getUnitOfWork(false).getById(entityName, pk as never) !== undefined) {
      return shard;
    }
  }
  return undefined;
}

/** The id chooser's candidates for a primary key (every shard when none is configured). */
function idCandidates(scope: ShardScope, entityName: EntityName<object>, pk: Primary<object>): readonly ShardId[] | Promise<readonly ShardId[]> {
  const chooser = scope.orm.routing.idChooser;
  if (!chooser) {
    return scope.orm.shardIds;
  }
  const name = Utils.className(entityName);
  const shards = callChooser('idChooser', chooser, { entityName: name, id: pk, em: scope.em }, describeEntityName, pk);
  return shards instanceof Promise ? shards.then(list => checkShards(scope, list, 'idChooser', name, pk)) : checkShards(scope, shards, 'idChooser', name, pk);
}

/** The id chooser's only candidate, for a reference made without a query; several candidates are ambiguous. */
export function onlyCandidate(scope: ShardScope, entityName: string, id: Primary<object>): ShardId {
  const chooser = scope.orm.routing.idChooser;
  const candidates = chooser ? callChooser('idChooser', chooser, { entityName, id, em: scope.em }, describeEntityName, id) : scope.orm.shardIds;
  if (candidates instanceof Promise) {
    candidates.catch(() => undefined);
    throw ShardingError.invalidOptions(
      `idChooser returned a promise for ${entityName} ${JSON.stringify(id)}, but getReference() is synchronous; pass { shard }.`,
      id,
    );
  }
  const shards = checkShards(scope, candidates, 'idChooser', entityName, id);
  if (shards.length !== 1) {
    throw ShardingError.ambiguousShard(entityName, id, shards);
  }
  return shards[0]!;
}

/** Searches the candidate shards in order; the first that has the entity wins. */
export function findInCandidates<T>(
  scope: ShardScope,
  entityName: EntityName<object>,
  pk: Primary<object>,
  find: (fork: SqlEntityManager) => Promise<T | null>,
): Promise<T | null> {
  const inMap = shardInIdentityMaps(scope, entityName, pk);
  if (inMap !== undefined) {
    return onShard('findOne', inMap, onReadyFork(scope, inMap, find));
  }
  const candidates = idCandidates(scope, entityName, pk);
  return candidates instanceof Promise ? candidates.then(list => searchInOrder(scope, list, find)) : searchInOrder(scope, candidates, find);
}

/** The first candidate that has it; with one candidate (an id that names its shard) that shard's answer, as is. */
function searchInOrder<T>(scope: ShardScope, shards: readonly ShardId[], find: (fork: SqlEntityManager) => Promise<T | null>): Promise<T | null> {
  if (shards.length === 1) {
    return onShard('findOne', shards[0]!, onReadyFork(scope, shards[0]!, find));
  }
  return (async () => {
    for (const shard of shards) {
      const found = await onShard('findOne', shard, onReadyFork(scope, shard, find));
      if (found) {
        return found;
      }
    }
    return null;
  })();
}
