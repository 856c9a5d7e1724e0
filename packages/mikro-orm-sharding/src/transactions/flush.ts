import type { ShardScope } from '../scope.ts';
import { settleEach } from '../fleet/settle.ts';
import { onShard } from '../errors/shard-failure.ts';
import { flushed } from '../write/flush-witness.ts';
import type { MovePlan } from '../moves/plan.ts';
import { MoveRun } from '../moves/run.ts';
import { ShardTransaction } from './transaction.ts';

/**
 * Writes what every shard fork of an entity manager holds, once each new entity has its shard. Inside a
 * transaction, within it. Outside one, a flush that may write several shards runs in a transaction of its own, of
 * the fleet's `transactionMode` (so a `single` fleet refuses one that writes two shards, before writing); a flush of
 * one fork, or with MikroORM's `implicitTransactions: false`, is each fork's plain MikroORM flush. A fleet with
 * broadcast entities always flushes in a transaction of its own, since a broadcast row goes to every shard. A flush
 * that moves rows runs in a two-phase transaction (`moves`, see moves/).
 */
export async function flushShards(scope: ShardScope, transaction: ShardTransaction | undefined, moves?: MovePlan): Promise<void> {
  if (moves !== undefined) {
    return flushMoving(scope, transaction, moves);
  }
  if (transaction) {
    return transaction.flush();
  }
  const forks = scope.forks;
  const broadcast = scope.orm.shardKeys.hasBroadcast;
  if (forks.size === 1 && !broadcast) {
    // One shard: its own flush, in MikroORM's own transaction, is the whole story (and nothing else committed).
    const [shard, fork] = forks.entries().next().value!;
    return onShard('flush', shard, fork.flush());
  }
  const shards = [...forks.keys()];
  if (shards.length === 0 || (!broadcast && !forks.get(shards[0]!)!.config.get('implicitTransactions'))) {
    await settleEach(
      'flush',
      shards,
      shard => flushed(scope.forks.get(shard)!),
      wrote => wrote,
    );
    return;
  }
  const own = new ShardTransaction(scope, { mode: scope.orm.transactionConfig.mode, operation: 'flush' });
  try {
    await own.flush();
    await own.commit();
  } catch (error) {
    await own.rollback().catch(() => undefined);
    throw error;
  }
}

/**
 * A flush that moves rows: copies them to their new shards, writes every fork's changes (the moved entities' on
 * their new shards), deletes the old rows, all in one two-phase transaction: the entity manager's (a `twopc` one,
 * which planning checked), or one of its own. On failure the moved entities go back to their old shards' forks.
 */
async function flushMoving(scope: ShardScope, transaction: ShardTransaction | undefined, plan: MovePlan): Promise<void> {
  const own = transaction ?? new ShardTransaction(scope, { mode: 'twopc', operation: 'flush' });
  let run: MoveRun | undefined;
  try {
    run = await MoveRun.start(scope, own, plan);
    await own.flush();
    await run.finish();
    if (transaction === undefined) {
      await own.commit();
    }
  } catch (error) {
    run?.undo();
    if (transaction === undefined) {
      await own.rollback().catch(() => undefined);
    }
    throw error;
  }
}
