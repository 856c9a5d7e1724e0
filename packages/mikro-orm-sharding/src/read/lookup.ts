import { Utils, type EntityMetadata, type EntityName, type Primary } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { shardsOfId } from '../routing/resolve.ts';
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

/** The candidates for a primary key: the id chooser's, else the `shardBy` declaration's, else every shard. */
function idCandidates(scope: ShardScope, entityName: EntityName<object>, pk: Primary<object>): MaybePromise<readonly ShardId[]> {
  return shardsOfId(scope, scope.meta(entityName), pk);
}

/** The only candidate, for a reference made without a query; several candidates are ambiguous. */
export function onlyCandidate(scope: ShardScope, entityName: EntityName<object>, id: Primary<object>): ShardId {
  const candidates = idCandidates(scope, entityName, id);
  const name = Utils.className(entityName);
  if (candidates instanceof Promise) {
    candidates.catch(() => undefined);
    throw ShardingError.invalidOptions(
      `the shard of ${name} ${JSON.stringify(id)} is looked up asynchronously (an idChooser's promise, or a directory), but getReference() is synchronous; pass { shard }.`,
      id,
    );
  }
  if (candidates.length !== 1) {
    throw ShardingError.ambiguousShard(name, id, candidates);
  }
  return candidates[0]!;
}

/** Searches the candidate shards in order; the first that has the entity wins. */
export function findInCandidates<T>(
  scope: ShardScope,
  entityName: EntityName<object>,
  pk: Primary<object>,
  find: (fork: SqlEntityManager, shard: ShardId) => Promise<T | null>,
): Promise<T | null> {
  const inMap = shardInIdentityMaps(scope, entityName, pk);
  if (inMap !== undefined) {
    return onShard(
      'findOne',
      inMap,
      onReadyFork(scope, inMap, fork => find(fork, inMap)),
    );
  }
  const candidates = idCandidates(scope, entityName, pk);
  return candidates instanceof Promise ? candidates.then(list => searchInOrder(scope, list, find)) : searchInOrder(scope, candidates, find);
}

/** The first candidate that has it; with one candidate (an id that names its shard) that shard's answer, as is. */
function searchInOrder<T>(
  scope: ShardScope,
  shards: readonly ShardId[],
  find: (fork: SqlEntityManager, shard: ShardId) => Promise<T | null>,
): Promise<T | null> {
  if (shards.length === 1) {
    return onShard(
      'findOne',
      shards[0]!,
      onReadyFork(scope, shards[0]!, fork => find(fork, shards[0]!)),
    );
  }
  return (async () => {
    for (const shard of shards) {
      const found = await onShard(
        'findOne',
        shard,
        onReadyFork(scope, shard, fork => find(fork, shard)),
      );
      if (found) {
        return found;
      }
    }
    return null;
  })();
}
