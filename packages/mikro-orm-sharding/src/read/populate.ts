import { helper } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { settleEach } from '../fleet/settle.ts';
import { groupInto } from '../group.ts';
import { readOn } from '../routing/read-your-writes.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { labelOf } from '../write/write-plan.ts';

/** Loads relations of entities you hold (`em.populate()`), each group on its own shard's fork, the shards in parallel. */
export async function populateOnShards(
  scope: ShardScope,
  entities: readonly object[],
  populate: readonly string[] | false,
  options: { readonly connectionType?: unknown; readonly flushMode?: unknown },
): Promise<void> {
  const byShard = new Map<ShardId, object[]>();
  for (const entity of entities) {
    const shard = scope.shardOf(entity);
    if (shard === undefined) {
      throw ShardingError.unplacedEntity('populate', labelOf(entity));
    }
    groupInto(byShard, shard, entity);
  }
  await settleEach('populate', [...byShard.keys()], shard => {
    const group = byShard.get(shard)!;
    const read = readOn(scope, shard, helper(group[0]!).__meta.class, options);
    return onReadyFork(scope, shard, fork => fork.populate(group, populate as never, read as never));
  });
}
