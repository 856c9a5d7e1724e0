import type { ShardedEntityManager } from '../ShardedEntityManager.ts';
import { runInContext } from './context.ts';
import type { ShardTransaction } from './transaction.ts';

/**
 * Runs a `transactional()` callback on its entity manager as MikroORM does: the callback, then a flush, then the
 * commit; any throw rolls back on every shard the transaction touched and is rethrown as it is (a failed rollback
 * is logged, not thrown over it). Inside, the fleet's global `orm.em` is this entity manager. `transaction` is
 * undefined for a callback run outside any transaction (propagation `NOT_SUPPORTED`, ...): it is flushed only.
 */
export async function runTransaction<T, Id extends string>(
  em: ShardedEntityManager<Id>,
  transaction: ShardTransaction | undefined,
  cb: (em: ShardedEntityManager<Id>) => T | Promise<T>,
): Promise<T> {
  const orm = em.orm as unknown as Parameters<typeof runInContext>[0];
  return runInContext(orm, em as ShardedEntityManager, async () => {
    try {
      const result = await cb(em);
      await em.flush();
      await transaction?.commit();
      return result;
    } catch (error) {
      await transaction?.rollback().catch((rollbackError: unknown) => warn(em, rollbackError));
      throw error;
    }
  });
}

function warn(em: ShardedEntityManager<string>, error: unknown): void {
  const shard = em.orm.shardIds[0]!;
  em.orm
    .shard(shard)
    .config.getLogger()
    .warn('query', `Failed to roll back transaction: ${error instanceof Error ? error.message : String(error)}`);
}
