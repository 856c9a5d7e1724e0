import type { LogContext } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { recordFailure } from '../errors/shard-failure.ts';
import { commitShard, rollbackShard, type Participant } from './single.ts';

/**
 * The `multi` mode's commit (and the `single` mode's, which has one participant): each shard's transaction commits
 * in turn, in the order the transaction first touched the shards. When one commit fails, that shard and every shard
 * after it roll back, and MikroORM's error of the failing shard is thrown with `shardFailureOf(error).done` naming
 * the shards that had committed (their writes stay).
 */
export async function commitInOrder(operation: string, participants: readonly Participant[], loggerContext: LogContext | undefined): Promise<void> {
  const committed: ShardId[] = [];
  for (const [i, participant] of participants.entries()) {
    try {
      await commitShard(participant, loggerContext);
    } catch (error) {
      // A failed COMMIT has ended the transaction on the server; the rollback hands its connection back.
      await Promise.allSettled(participants.slice(i).map(rollbackShard));
      throw recordFailure({ operation, shard: participant.shard, done: committed, failed: [{ shard: participant.shard, error }] }, true);
    }
    committed.push(participant.shard);
  }
}
