import { TransactionPropagation, TransactionStateError } from '@mikro-orm/core';

/**
 * What `transactional()` does, as MikroORM's `TransactionManager` decides it from the propagation and whether a
 * transaction is under way: run the callback as is (`join`), in a nested transaction (savepoints), in a new one
 * (independent of any under way), or in none (on a fork outside any transaction).
 */
export type Plan = 'join' | 'nested' | 'new' | 'none';

export function planOf(propagation: `${TransactionPropagation}` | undefined, inTransaction: boolean): Plan {
  switch (propagation ?? TransactionPropagation.NESTED) {
    case TransactionPropagation.NESTED:
      return inTransaction ? 'nested' : 'new';
    case TransactionPropagation.REQUIRED:
      return inTransaction ? 'join' : 'new';
    case TransactionPropagation.REQUIRES_NEW:
      return 'new';
    case TransactionPropagation.SUPPORTS:
      return inTransaction ? 'join' : 'none';
    case TransactionPropagation.MANDATORY:
      if (!inTransaction) {
        throw TransactionStateError.requiredTransactionNotFound(propagation!);
      }
      return 'join';
    case TransactionPropagation.NEVER:
      if (inTransaction) {
        throw TransactionStateError.transactionNotAllowed(propagation!);
      }
      return 'none';
    case TransactionPropagation.NOT_SUPPORTED:
      return 'none';
    default:
      throw TransactionStateError.invalidPropagation(String(propagation));
  }
}
