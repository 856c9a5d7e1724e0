import { AsyncLocalStorage } from 'node:async_hooks';
import type { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

const storage = new AsyncLocalStorage<ReadonlyMap<ShardedMikroORM, ShardedEntityManager>>();

/**
 * Runs a `transactional()` callback with its entity manager as the fleet's current one, as MikroORM's
 * `TransactionContext` does: inside, the global `orm.em` acts on the transaction's entity manager.
 */
export function runInContext<T>(orm: ShardedMikroORM, em: ShardedEntityManager, next: () => T): T {
  const scoped = new Map(storage.getStore());
  scoped.set(orm, em);
  return storage.run(scoped, next);
}

/** The entity manager of the `transactional()` callback running now for this fleet, if any. */
export function transactionEntityManager(orm: ShardedMikroORM): ShardedEntityManager | undefined {
  return storage.getStore()?.get(orm);
}
