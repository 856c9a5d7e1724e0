import type { MaybePromise, ShardId } from './choosers.ts';
import { ShardingError } from './errors.ts';
import type { ShardScope } from './scope.ts';

/** Calls a user's chooser, turning a throw or a rejected promise into `CHOOSER_FAILED`. */
export async function callChooser<T>(name: string, entity: string, value: unknown, call: () => MaybePromise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw error instanceof ShardingError ? error : ShardingError.chooserFailed(name, entity, value, error);
  }
}

/** Checks one shard id a chooser or a caller gave. */
export function checkShard(scope: ShardScope, shard: unknown, source: string, entity: string, value?: unknown): ShardId {
  if (shard === undefined || shard === null || shard === '') {
    throw ShardingError.chooserReturnedNothing(source, entity, value);
  }
  if (typeof shard !== 'string' || !scope.orm.shards.has(shard)) {
    throw ShardingError.unknownShard(shard, scope.orm.shardIds, { entity, source });
  }
  return shard;
}

/** Checks the list an id or query chooser gave: non-empty, known ids, duplicates dropped (first place wins). */
export function checkShards(scope: ShardScope, shards: unknown, source: string, entity: string, value?: unknown): ShardId[] {
  if (!Array.isArray(shards) || shards.length === 0) {
    if (typeof shards === 'string') {
      return [checkShard(scope, shards, source, entity, value)];
    }
    throw ShardingError.chooserReturnedNothing(source, entity, value);
  }
  return [...new Set(shards.map(shard => checkShard(scope, shard, source, entity, value)))];
}
