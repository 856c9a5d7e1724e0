import { AsyncLocalStorage } from 'node:async_hooks';
import type { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

/** The callbacks running now, innermost first (callbacks of several fleets may nest). */
interface Context {
  readonly orm: ShardedMikroORM;
  readonly em: ShardedEntityManager;
  readonly outer: Context | undefined;
}

const storage = new AsyncLocalStorage<Context>();

/**
 * Runs a `transactional()` callback with its entity manager as the fleet's current one, as MikroORM's
 * `TransactionContext` does: inside, the global `orm.em` acts on the transaction's entity manager.
 */
export function runInContext<T>(orm: ShardedMikroORM, em: ShardedEntityManager, next: () => T): T {
  return storage.run({ orm, em, outer: storage.getStore() }, next);
}

/** The entity manager of the `transactional()` callback running now for this fleet, if any. */
export function transactionEntityManager(orm: ShardedMikroORM): ShardedEntityManager | undefined {
  for (let context = storage.getStore(); context; context = context.outer) {
    if (context.orm === orm) {
      return context.em;
    }
  }
  return undefined;
}
