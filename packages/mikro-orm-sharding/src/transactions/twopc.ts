import { randomUUID } from 'node:crypto';
import { EventType, TransactionEventBroadcaster, type LogContext, type TransactionEventType } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { recordFailure } from '../errors/shard-failure.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { forget, gidOf, openDecision, type PendingDecision } from './coordinator-log.ts';
import { crashPoint } from './crash-point.ts';
import { seal, unseal } from './flush-gate.ts';
import { commitInOrder } from './multi.ts';
import { finishPart, preparedDisabled, type Finished } from './prepared-xacts.ts';
import type { ResolvedTwoPhase } from './settings.ts';
import { rollbackShard, type Participant } from './single.ts';

/**
 * The `twopc` mode's commit (PostgreSQL). With one participant it is that shard's plain commit. Otherwise:
 * 1. the coordinator log's row for the transaction is inserted in an open transaction on the log shard;
 * 2. every shard prepares (`PREPARE TRANSACTION`); a failure rolls every shard back, prepared or not;
 * 3. the log's transaction commits: the decision is durable, the transaction committed;
 * 4. every shard commits its prepared transaction (`COMMIT PREPARED`), then the row is deleted.
 * A shard that fails step 4 keeps its part prepared (its rows locked) until `orm.recover()` commits it.
 * After a shard prepares, nothing more is flushed to it: its fork refuses a flush until step 4.
 */
export async function commitTwoPhase(
  orm: ShardedMikroORM,
  config: ResolvedTwoPhase,
  operation: string,
  participants: readonly Participant[],
  loggerContext: LogContext | undefined,
): Promise<void> {
  if (participants.length < 2) {
    return commitInOrder(operation, participants, loggerContext);
  }
  const txid = randomUUID().replaceAll('-', '');
  const shards = participants.map(participant => participant.shard);
  // What subscribers write before a commit lands in the shards' transactions, as with MikroORM's commit.
  await everyOrRollBack(operation, participants, participant => broadcast(participant, EventType.beforeTransactionCommit));
  crashPoint?.('begin');
  let decision: PendingDecision;
  try {
    decision = await openDecision(orm, config, txid, shards);
  } catch (error) {
    await Promise.allSettled(participants.map(rollbackShard));
    throw recordFailure({ operation, shard: config.logShard, done: [], failed: [{ shard: config.logShard, error }] }, true);
  }
  await prepareAll(orm, config, operation, txid, participants, decision);
  const atPrepared = crashPoint?.('prepared');
  if (atPrepared) {
    await atPrepared;
  }
  try {
    await decision.commit();
  } catch (error) {
    participants.forEach(participant => unseal(participant.fork));
    throw ShardingError.transactionInDoubt(txid, config.logShard, shards, error);
  }
  const atLogged = crashPoint?.('logged');
  if (atLogged) {
    await atLogged;
  }
  const unfinished = await commitPreparedAll(orm, config, txid, participants);
  if (unfinished.length === 0) {
    // Only the decision is lost if this fails: recover() deletes rows whose shards hold nothing prepared.
    await forget(orm, config, txid).catch(() => undefined);
  }
}

/** Step 2: prepares every shard at once; on any failure, rolls every shard back and throws the first shard's error. */
async function prepareAll(
  orm: ShardedMikroORM,
  config: ResolvedTwoPhase,
  operation: string,
  txid: string,
  participants: readonly Participant[],
  decision: PendingDecision,
): Promise<void> {
  const prepared: Participant[] = [];
  const outcomes = await Promise.allSettled(
    participants.map(async (participant, i) => {
      const held = crashPoint?.(`prepare:${i + 1}`);
      if (held) {
        await held;
      }
      const { shard, fork, ctx } = participant;
      const connection = fork.getConnection('write');
      seal(fork);
      try {
        await connection.execute(`prepare transaction '${gidOf(config.coordinatorId, txid, shard)}'`, [], 'run', ctx);
      } catch (error) {
        unseal(fork);
        throw preparedDisabled(shard, error) ?? fork.getDriver().convertException(error as Error);
      }
      prepared.push(participant);
      crashPoint?.(`prepared:${prepared.length}`);
      // The session has no transaction any more: its COMMIT is a no-op that hands the connection back to the pool,
      // on the side (the protocol goes on on other connections).
      fork.resetTransactionContext();
      void connection.commit(ctx).catch(() => undefined);
    }),
  );
  if (outcomes.every(outcome => outcome.status === 'fulfilled')) {
    return;
  }
  // No decision was taken: drop the row, then roll back what was prepared and what was not.
  await decision.abandon().catch(() => undefined);
  await Promise.allSettled(
    participants.map(async participant => {
      if (prepared.includes(participant)) {
        await finishPrepared(orm, config, txid, participant, 'rollback');
      } else {
        await rollbackShard(participant);
      }
    }),
  );
  const failed = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [{ shard: participants[i]!.shard, error: outcome.reason as unknown }] : []));
  throw recordFailure({ operation, shard: failed[0]!.shard, done: [], failed }, true);
}

/**
 * Step 4: commits every prepared shard at once; resolves to the shards not known to be committed (left to recover(),
 * which finds the decision logged).
 */
async function commitPreparedAll(orm: ShardedMikroORM, config: ResolvedTwoPhase, txid: string, participants: readonly Participant[]): Promise<ShardId[]> {
  let committed = 0;
  const outcomes = await Promise.allSettled(
    participants.map(async (participant, i) => {
      const held = crashPoint?.(`commit:${i + 1}`);
      if (held) {
        await held;
      }
      const finished = await finishPrepared(orm, config, txid, participant, 'commit');
      crashPoint?.(`committed:${++committed}`);
      return finished;
    }),
  );
  const unfinished: ShardId[] = [];
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') {
      // A recovery committing it right now may yet fail: the decision stays logged until nothing is prepared.
      if (outcome.value === 'busy') {
        unfinished.push(participants[i]!.shard);
      }
    } else {
      const { shard } = participants[i]!;
      unfinished.push(shard);
      // The transaction is committed (the decision is logged): the caller gets its result, and recover() finishes this shard.
      orm
        .shard(shard)
        .config.getLogger()
        .warn(
          'query',
          `two-phase commit ${txid} is committed, but COMMIT PREPARED failed on shard ${shard} (${String((outcome.reason as Error)?.message ?? outcome.reason)}); orm.recover() commits it there once the shard answers`,
        );
    }
  });
  return unfinished;
}

/**
 * COMMIT PREPARED or ROLLBACK PREPARED of one shard's part, on a connection outside any transaction, with MikroORM's
 * events. A part gone or busy is a recover() running meanwhile, finishing it the way the decision says.
 */
async function finishPrepared(
  orm: ShardedMikroORM,
  config: ResolvedTwoPhase,
  txid: string,
  participant: Participant,
  how: 'commit' | 'rollback',
): Promise<Finished> {
  const { shard, fork } = participant;
  if (how === 'rollback') {
    await broadcast(participant, EventType.beforeTransactionRollback);
  }
  let finished: Finished;
  try {
    finished = await finishPart(orm, { shard, txid, gid: gidOf(config.coordinatorId, txid, shard) }, how === 'commit');
  } finally {
    unseal(fork);
  }
  await broadcast(participant, how === 'commit' ? EventType.afterTransactionCommit : EventType.afterTransactionRollback);
  return finished;
}

function broadcast(participant: Participant, event: TransactionEventType): Promise<void> {
  return new TransactionEventBroadcaster(participant.fork).dispatchEvent(event, participant.ctx);
}

/** Runs `task` on every participant; if any fails, rolls every one back and throws the first failure. */
async function everyOrRollBack(operation: string, participants: readonly Participant[], task: (participant: Participant) => Promise<void>): Promise<void> {
  const outcomes = await Promise.allSettled(participants.map(task));
  const failed = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [{ shard: participants[i]!.shard, error: outcome.reason as unknown }] : []));
  if (failed.length > 0) {
    await Promise.allSettled(participants.map(rollbackShard));
    throw recordFailure({ operation, shard: failed[0]!.shard, done: [], failed }, true);
  }
}
