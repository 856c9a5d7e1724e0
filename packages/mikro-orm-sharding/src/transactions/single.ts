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

/** The database a shard writes to, as `databaseOf()` keys it; undefined when it shares it with no other shard. */
export type DatabaseKeyOf = (shard: ShardId) => string | undefined;

/**
 * The `single` mode's rule, asked before a shard's transaction begins: a transaction on one shard may not touch
 * another, unless both are on one database and so in one transaction (table-suffix shards join the first one's).
 * `touched` are the shards it has begun (or is beginning).
 */
export function checkSingle(touched: Iterable<ShardId>, shard: ShardId, databaseOf: DatabaseKeyOf): void {
  const span = twoTransactions([...touched, shard], databaseOf);
  if (span !== undefined) {
    throw ShardingError.transactionSpansShards(...span);
  }
}

/** The first two of `shards` whose work would run in two database transactions, or undefined when it runs in one. */
export function twoTransactions(shards: Iterable<ShardId>, databaseOf: DatabaseKeyOf): [ShardId, ShardId] | undefined {
  let first: ShardId | undefined;
  let database: string | undefined;
  for (const shard of shards) {
    if (first === undefined) {
      first = shard;
      database = databaseOf(shard);
    } else if (shard !== first && (database === undefined || databaseOf(shard) !== database)) {
      return [first, shard];
    }
  }
  return undefined;
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
