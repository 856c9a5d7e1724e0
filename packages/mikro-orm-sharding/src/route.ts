import { Utils, type EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { MaybePromise, ShardId } from './choosers.ts';
import { ShardingError } from './errors/errors.ts';
import { shardsKnowing } from './fleet/fleet-metadata.ts';
import type { ShardScope } from './scope.ts';

/**
 * Calls a user's chooser, turning a throw or a rejected promise into `CHOOSER_FAILED`. A synchronous answer stays
 * synchronous, and nothing is allocated on the way: routing runs once per entity written or looked up.
 * `describe` names what was routed, for the error only.
 */
export function callChooser<A, T>(
  name: string,
  chooser: (args: A) => MaybePromise<T>,
  args: A,
  describe: (args: A) => string,
  value: unknown,
): MaybePromise<T> {
  try {
    const answer = chooser(args);
    return answer instanceof Promise ? answer.catch((error: unknown) => failed(name, describe(args), value, error)) : answer;
  } catch (error) {
    return failed(name, describe(args), value, error);
  }
}

function failed(name: string, entity: string, value: unknown, error: unknown): never {
  throw error instanceof ShardingError ? error : ShardingError.chooserFailed(name, entity, value, error);
}

/** Names the entity of id and query chooser arguments in errors. */
export const describeEntityName = (args: { readonly entityName: string }): string => args.entityName;

/** Checks one shard id a chooser or a caller gave; `entity` labels the error (a function: labels cost). */
export function checkShard(scope: ShardScope, shard: unknown, source: string, entity: string | (() => string), value?: unknown): ShardId {
  if (typeof shard === 'string' && scope.orm.fleet.has(shard)) {
    return shard;
  }
  const label = typeof entity === 'function' ? entity() : entity;
  if (shard === undefined || shard === null || shard === '') {
    throw ShardingError.chooserReturnedNothing(source, label, value);
  }
  throw scope.orm.fleet.notRegistered(shard, { entity: label, source });
}

/**
 * Checks that a shard declares an entity (shards may each have their own `entities`), before anything is read or
 * written there: otherwise MikroORM would fail on that shard alone, after the others acted.
 * `label` names the entity in the error (`Author#1`, `new Author`); it defaults to the entity name.
 */
export function checkEntityOnShard<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  shard: ShardId,
  source: string,
  written: boolean,
  label?: () => string,
): void {
  const knowing = shardsKnowing(scope.orm, entityName as EntityName<object>);
  if (!knowing.has(shard)) {
    const name = Utils.className(entityName);
    throw ShardingError.entityNotOnShard(label?.() ?? name, name, shard, [...knowing], source, written);
  }
}

/** The fork of the shard named by a `{ shard }` option, which must be configured and declare the entity. */
export function forkOfOption(scope: ShardScope, entityName: EntityName<object>, shard: ShardId, written: boolean): SqlEntityManager {
  const fork = scope.fork(shard, 'the { shard } option');
  checkEntityOnShard(scope, entityName, shard, 'the { shard } option', written);
  return fork;
}

/**
 * Checks the list an id or query chooser gave for reading `entity` (an entity name): non-empty, known ids that
 * declare the entity, duplicates dropped (first place wins).
 */
export function checkShards(scope: ShardScope, shards: unknown, source: string, entity: string, value?: unknown): readonly ShardId[] {
  if (!Array.isArray(shards) || shards.length === 0) {
    if (typeof shards === 'string') {
      return checkShards(scope, [shards], source, entity, value);
    }
    throw ShardingError.chooserReturnedNothing(source, entity, value);
  }
  // MikroORM's metadata also finds an entity by its name, which is all a chooser's caller passes here.
  const knowing = shardsKnowing(scope.orm, entity as unknown as EntityName<object>);
  let duplicates = false;
  for (let i = 0; i < shards.length; i++) {
    checkShard(scope, shards[i], source, entity, value);
    if (!knowing.has(shards[i])) {
      checkEntityOnShard(scope, entity as unknown as EntityName<object>, shards[i], source, false);
    }
    duplicates ||= shards.indexOf(shards[i]) !== i;
  }
  // The common answer has no duplicates; keep it as given rather than copy it on the lookup path.
  return duplicates ? [...new Set(shards as ShardId[])] : (shards as readonly ShardId[]);
}
