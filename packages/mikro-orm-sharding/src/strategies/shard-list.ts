import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';

/** Refuses a strategy's shard list that is empty, holds something other than non-empty strings, or repeats a shard. */
export function checkShardList(owner: string, shards: unknown): asserts shards is readonly ShardId[] {
  if (!Array.isArray(shards) || shards.length === 0) {
    throw ShardingError.invalidOptions(`${owner} needs \`shards\`: a non-empty list of shard ids; got ${describe(shards)}.`, shards);
  }
  const seen = new Set<unknown>();
  for (const shard of shards) {
    if (typeof shard !== 'string' || shard === '') {
      throw ShardingError.invalidOptions(`${owner} got ${describe(shard)} among its shards; a shard id is a non-empty string.`, shard);
    }
    if (seen.has(shard)) {
      throw ShardingError.invalidOptions(`${owner} lists shard ${describe(shard)} twice.`, shard);
    }
    seen.add(shard);
  }
}
