import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { broadcastChangesOf, checkOneHome, replicate, writesBroadcast } from '../broadcast/changes.ts';
import { BroadcastMeeting, NOT_REPLAYED } from '../broadcast/meeting.ts';
import { ShardingError } from '../errors/errors.ts';
import { onShard, recordFailure } from '../errors/shard-failure.ts';
import { settleEach } from '../fleet/settle.ts';
import { settled } from '../routing/settled.ts';
import type { ShardScope } from '../scope.ts';
import { flushThrough, Rendezvous } from './flush-gate.ts';
import type { ShardTransaction } from './transaction.ts';

/**
 * Flushes every fork of the entity manager of `scope` inside its open transaction. A fork that writes and has not
 * begun begins now (MikroORM tells at `onFlush`, before it writes); one with nothing to write begins nothing. In
 * `single` mode, and whenever a shard's circuit breaker is open, the forks first wait for each other, so that a
 * flush writing two shards (`single`), or writing to a shard that is refused (`SHARD_UNAVAILABLE`), fails before
 * any shard writes.
 */
export async function flushInTransaction(transaction: ShardTransaction, scope: ShardScope): Promise<void> {
  if (scope.orm.shardKeys.hasBroadcast) {
    return flushWithBroadcast(transaction, scope);
  }
  const forks = scope.forks;
  if (forks.size === 1) {
    // The common case, one shard: no gathering of outcomes.
    const [shard, fork] = forks.entries().next().value!;
    return onShard(transaction.operation, shard, flushShard(transaction, scope, shard, fork, undefined, undefined));
  }
  const shards = [...forks.keys()];
  const meeting = rendezvousOf(transaction, scope, shards);
  await settleEach(
    transaction.operation,
    shards,
    shard => flushShard(transaction, scope, shard, forks.get(shard)!, meeting, undefined),
    () => false,
  );
}

/**
 * {@link flushInTransaction} for a fleet with broadcast entities: forks that write broadcast rows write first, their
 * rows are replayed on every other shard holding the entity, then the other forks write (see {@link BroadcastMeeting}).
 */
async function flushWithBroadcast(transaction: ShardTransaction, scope: ShardScope): Promise<void> {
  const forks = scope.forks;
  const shards = [...forks.keys()];
  const orm = scope.orm;
  const broadcast = new BroadcastMeeting(shards.length, changes => {
    checkOneHome(changes);
    return replicate(orm, changes, async shard => {
      const ready = transaction.ready(shard);
      if (ready) {
        await ready;
      }
      return scope.fork(shard);
    });
  });
  const meeting = rendezvousOf(transaction, scope, shards);
  const outcomes = await Promise.allSettled(shards.map(shard => flushShard(transaction, scope, shard, forks.get(shard)!, meeting, broadcast)));
  // No fork waits for the replay when every fork wrote broadcast rows: wait for it here.
  await broadcast.replayed();
  if (broadcast.error !== undefined) {
    throw broadcast.error;
  }
  const failed = outcomes.flatMap((outcome, i) =>
    outcome.status === 'rejected' && outcome.reason !== NOT_REPLAYED ? [{ shard: shards[i]!, error: outcome.reason as unknown }] : [],
  );
  if (failed.length > 0) {
    throw recordFailure({ operation: transaction.operation, shard: failed[0]!.shard, done: [], failed }, true);
  }
}

/** Where the forks of a flush wait for each other before writing: in `single` mode, or when a shard's circuit is open. */
function rendezvousOf(transaction: ShardTransaction, scope: ShardScope, shards: readonly ShardId[]): Rendezvous | undefined {
  const { health } = scope.orm.faults;
  return transaction.mode === 'single' || shards.some(shard => health.refusesNow(shard))
    ? new Rendezvous(shards.length, writers => transaction.admit(writers))
    : undefined;
}

async function flushShard(
  transaction: ShardTransaction,
  scope: ShardScope,
  shard: ShardId,
  fork: SqlEntityManager,
  meeting: Rendezvous | undefined,
  broadcast: BroadcastMeeting | undefined,
): Promise<void> {
  if (meeting === undefined && broadcast === undefined && transaction.hasBegun(shard)) {
    // Begun: its flush writes in the shard's transaction, with nothing to decide.
    return fork.flush();
  }
  const orm = scope.orm;
  let home = false;
  try {
    await flushThrough(fork, {
      enter:
        broadcast === undefined
          ? dirty => (meeting ? meeting.arrive(shard, dirty).then(() => enter(transaction, shard, dirty)) : enter(transaction, shard, dirty))
          : (dirty, uow) =>
              // Every fork meets the rendezvous first: a fork waiting for broadcast rows there would block it.
              settled(meeting?.arrive(shard, dirty), () => {
                home = dirty && writesBroadcast(orm, uow);
                return settled(broadcast.arrive(shard, home), () => enter(transaction, shard, dirty));
              }) as Promise<void> | undefined,
      after: broadcast === undefined ? undefined : uow => home && broadcast.written(shard, broadcastChangesOf(orm, fork, uow, shard)),
      implicitStart: () => {
        throw ShardingError.unsupported(
          `A flush to which an onFlush subscriber added changes after the sharded transaction had looked (shard ${JSON.stringify(shard)})`,
          "register event subscribers in init()'s `subscribers` option, so that they run first. Nothing was written on that shard",
        );
      },
    });
  } catch (error) {
    broadcast?.failed(shard);
    throw error;
  } finally {
    meeting?.leave(shard);
    broadcast?.arrive(shard, false);
    // MikroORM resets a fork's transaction after a flush that began without one: give back the one begun meanwhile.
    const ctx = transaction.begunOn(shard);
    if (ctx !== undefined && fork.getTransactionContext() !== ctx) {
      fork.setTransactionContext(ctx);
    }
  }
}

/** At a fork's `onFlush`: begins the shard if the flush writes there. */
function enter(transaction: ShardTransaction, shard: ShardId, dirty: boolean): Promise<void> | undefined {
  return dirty && !transaction.hasBegun(shard) ? transaction.ready(shard) : undefined;
}
