import { TransactionEventBroadcaster, type LogContext, type Transaction } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';

/** One shard's part of a sharded transaction: its fork, and the fork's transaction (or savepoint) on that shard. */
export interface Participant {
  readonly shard: ShardId;
  readonly fork: SqlEntityManager;
  readonly ctx: Transaction;
}

/**
 * The `single` mode's rule, asked before a shard's transaction begins: a transaction on one shard may not touch
 * another. `touched` are the shards it has begun (or is beginning).
 */
export function checkSingle(touched: Iterable<ShardId>, shard: ShardId): void {
  for (const other of touched) {
    if (other !== shard) {
      throw ShardingError.transactionSpansShards(other, shard);
    }
  }
}

/**
 * Commits one shard's transaction (or releases its savepoint) as MikroORM's `em.commit()` does after its flush,
 * with the same transaction events; the flush has run already.
 */
export async function commitShard(participant: Participant, loggerContext: LogContext | undefined): Promise<void> {
  const { fork, ctx } = participant;
  await fork.getConnection('write').commit(ctx, new TransactionEventBroadcaster(fork), loggerContext);
  fork.resetTransactionContext();
}

/** Rolls back one shard's transaction (or to its savepoint) with MikroORM's `em.rollback()`. */
export async function rollbackShard(participant: Participant): Promise<void> {
  const { fork, ctx } = participant;
  // A flush that began the transaction left the fork without it (MikroORM resets it after a flush): give it back.
  fork.setTransactionContext(ctx);
  await fork.rollback();
}
