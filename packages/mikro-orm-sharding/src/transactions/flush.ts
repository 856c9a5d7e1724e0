import type { ShardScope } from '../scope.ts';
import { settleEach } from '../fleet/settle.ts';
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
  const shards = [...scope.forks.keys()];
  if (shards.length < 2 || !scope.forks.get(shards[0]!)!.config.get('implicitTransactions')) {
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
