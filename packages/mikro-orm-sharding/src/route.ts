import type { MaybePromise, ShardId } from './choosers.ts';
import { ShardingError } from './errors.ts';
import type { ShardScope } from './scope.ts';

/**
 * Calls a user's chooser, turning a throw or a rejected promise into `CHOOSER_FAILED`. A synchronous answer stays
 * synchronous: routing runs once per entity written, and a promise per call would cost more than the chooser.
 */
export function callChooser<T>(name: string, entity: () => string, value: unknown, call: () => MaybePromise<T>): MaybePromise<T> {
  const fail = (error: unknown): never => {
    throw error instanceof ShardingError ? error : ShardingError.chooserFailed(name, entity(), value, error);
  };
  try {
    const answer = call();
    return answer instanceof Promise ? answer.catch(fail) : answer;
  } catch (error) {
    return fail(error);
  }
}

/** Checks one shard id a chooser or a caller gave; `entity` labels the error (a function: labels cost). */
export function checkShard(scope: ShardScope, shard: unknown, source: string, entity: string | (() => string), value?: unknown): ShardId {
  if (typeof shard === 'string' && scope.orm.shards.has(shard)) {
    return shard;
  }
  const label = typeof entity === 'function' ? entity() : entity;
  if (shard === undefined || shard === null || shard === '') {
    throw ShardingError.chooserReturnedNothing(source, label, value);
  }
  throw ShardingError.unknownShard(shard, scope.orm.shardIds, { entity: label, source });
}

/** Checks the list an id or query chooser gave: non-empty, known ids, duplicates dropped (first place wins). */
export function checkShards(scope: ShardScope, shards: unknown, source: string, entity: string, value?: unknown): readonly ShardId[] {
  if (!Array.isArray(shards) || shards.length === 0) {
    if (typeof shards === 'string') {
      return [checkShard(scope, shards, source, entity, value)];
    }
    throw ShardingError.chooserReturnedNothing(source, entity, value);
  }
  for (const shard of shards) {
    checkShard(scope, shard, source, entity, value);
  }
  // The common answer has no duplicates; keep it as given rather than copy it on the lookup path.
  return new Set(shards).size === shards.length ? (shards as readonly ShardId[]) : [...new Set(shards as ShardId[])];
}
