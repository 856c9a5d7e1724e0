import type { ShardId } from './choosers.ts';
import { ShardingError } from './errors.ts';

/**
 * Runs `task` on every shard at once and waits for all of them, so one failure never leaves another shard's work
 * running unobserved; then throws for the first failed shard (in `ids` order), naming the shards that succeeded.
 */
export async function settleEach<T>(operation: string, ids: readonly ShardId[], task: (id: ShardId) => Promise<T>): Promise<T[]> {
  const results = await Promise.allSettled(ids.map(id => task(id)));
  const failed = results.findIndex(result => result.status === 'rejected');
  if (failed >= 0) {
    const done = ids.filter((_, i) => results[i]!.status === 'fulfilled');
    throw ShardingError.shardOperationFailed(operation, ids[failed]!, (results[failed] as PromiseRejectedResult).reason, done);
  }
  return results.map(result => (result as PromiseFulfilledResult<T>).value);
}
