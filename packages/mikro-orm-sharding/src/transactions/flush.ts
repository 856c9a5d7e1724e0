import type { ShardScope } from '../scope.ts';
import { settleEach } from '../fleet/settle.ts';
import { onShard } from '../errors/shard-failure.ts';
import { flushed } from '../write/flush-witness.ts';
import { ShardTransaction } from './transaction.ts';

/**
 * Writes what every shard fork of an entity manager holds, once each new entity has its shard. Inside a
 * transaction, within it. Outside one, a flush that may write several shards runs in a transaction of its own, of
 * the fleet's `transactionMode` (so a `single` fleet refuses one that writes two shards, before writing); a flush of
 * one fork, or with MikroORM's `implicitTransactions: false`, is each fork's plain MikroORM flush.
 */
export async function flushShards(scope: ShardScope, transaction: ShardTransaction | undefined): Promise<void> {
  if (transaction) {
    return transaction.flush();
  }
  const forks = scope.forks;
  if (forks.size === 1) {
    // One shard: its own flush, in MikroORM's own transaction, is the whole story (and nothing else committed).
    const [shard, fork] = forks.entries().next().value!;
    return onShard('flush', shard, fork.flush());
  }
  const shards = [...forks.keys()];
  if (shards.length === 0 || !forks.get(shards[0]!)!.config.get('implicitTransactions')) {
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
