import type { Connection, EntityManager, EventSubscriber, Transaction, TransactionEventArgs } from '@mikro-orm/core';

/** The connection each transaction (or savepoint) of a table-suffix shard runs on: the one that began it. */
const owners = new WeakMap<Transaction, Connection>();
/** A savepoint being begun, by the entity manager beginning it: the transaction it is in. */
const parents = new WeakMap<EntityManager, Transaction>();

/**
 * Records which connection a table-suffix shard's transaction runs on. A shard that joins another shard's
 * transaction (one database, see `ShardTransaction`) runs its statements in that transaction, on the other shard's
 * connection; a read that bypassed MikroORM on the shard's own connection would miss the transaction's writes.
 */
export function transactionOwners(): EventSubscriber {
  return {
    beforeTransactionStart({ em, transaction }: TransactionEventArgs): void {
      if (transaction !== undefined) {
        parents.set(em, transaction);
      }
    },
    afterTransactionStart({ em, transaction }: TransactionEventArgs): void {
      if (transaction === undefined) {
        return;
      }
      const parent = transaction.savepointName === undefined ? undefined : parents.get(em);
      parents.delete(em);
      const owner = parent === undefined ? em.getConnection('write') : owners.get(parent);
      if (owner !== undefined) {
        owners.set(transaction, owner);
      }
    },
  };
}

/** Whether `ctx` is known to run on another connection than `connection` (a table-suffix shard that joined another's). */
export function runsElsewhere(ctx: Transaction, connection: Connection): boolean {
  const owner = owners.get(ctx);
  return owner !== undefined && owner !== connection;
}
