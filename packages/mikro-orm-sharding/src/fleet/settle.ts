import type { ShardId } from '../choosers.ts';
import type { ShardOutcome } from './run-bounded.ts';
import { recordFailure } from '../errors/shard-failure.ts';

/**
 * Runs `task` on every shard at once and waits for all of them, so one failure never leaves another shard's work
 * running unobserved; then rethrows the first failed shard's error (in `ids` order) as it is, recording the shard,
 * the other failures and the shards done (see `shardFailureOf`). For a write, `committed` tells which finished
 * shards changed something; the others are not reported as done.
 */
export async function settleEach<T>(
  operation: string,
  ids: readonly ShardId[],
  task: (id: ShardId) => Promise<T>,
  committed?: (value: T, id: ShardId) => boolean,
): Promise<T[]> {
  const results = await Promise.allSettled(ids.map(id => attempt(task, id)));
  if (results.some(result => result.status === 'rejected')) {
    const done: ShardId[] = [];
    const failed: { shard: ShardId; error: unknown }[] = [];
    results.forEach((result, i) => {
      if (result.status === 'rejected') {
        failed.push({ shard: ids[i]!, error: result.reason });
      } else if (!committed || committed(result.value, ids[i]!)) {
        done.push(ids[i]!);
      }
    });
    throw recordFailure({ operation, shard: failed[0]!.shard, done, failed }, committed !== undefined);
  }
  return results.map(result => (result as PromiseFulfilledResult<T>).value);
}

/** A task's promise; one that throws instead of rejecting must not leave the tasks started before it unobserved. */
function attempt<T>(task: (id: ShardId) => Promise<T>, id: ShardId): Promise<T> {
  try {
    return task(id);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Rethrows the first failure among bounded-run outcomes (see `runBounded`) as `settleEach` does: MikroORM's own
 * error, with the shard, the other failures and the shards done recorded for `shardFailureOf`.
 */
export function throwFirstFailure(operation: string, outcomes: readonly ShardOutcome<unknown>[], writes = false): void {
  const failed = outcomes.flatMap(outcome => (outcome.status === 'failed' ? [{ shard: outcome.shard, error: outcome.error }] : []));
  if (failed.length > 0) {
    const done = outcomes.filter(outcome => outcome.status === 'done').map(outcome => outcome.shard);
    throw recordFailure({ operation, shard: failed[0]!.shard, done, failed }, writes);
  }
}
