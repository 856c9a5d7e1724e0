import type { ForkOptions } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { forgetDeletionsInParent, mergeIntoParent, releaseEntity } from '../mikro-internals.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import type { ShardScope } from '../scope.ts';
import type { PendingWrites } from '../write/pending-writes.ts';
import { planOf } from './propagation.ts';
import type { ShardedTransactionOptions } from './settings.ts';
import { settingsOf } from './start.ts';
import type { ShardTransaction, TransactionSettings } from './transaction.ts';

/** How a `transactional()` callback runs: its transaction's settings and parent, or none (outside any transaction). */
export interface NestedStart {
  readonly settings: TransactionSettings | undefined;
  readonly parent: ShardTransaction | undefined;
}

/**
 * How a `transactional()` call runs under `outer` (the transaction its entity manager is in, if any): `'join'` (the
 * callback runs as is), or the transaction to make. Checked before anything runs: a mode the fleet cannot do throws.
 */
export function nestedStartOf(orm: ShardedMikroORM, outer: ShardTransaction | undefined, options: ShardedTransactionOptions): NestedStart | 'join' {
  const plan = planOf(options.propagation, outer !== undefined);
  if (plan === 'join') {
    return 'join';
  }
  // Nested in a transaction that never commits (rollbackScope()), it runs in its own mode, as it would outside.
  const inMode = plan === 'nested' && !outer!.rollbackOnly;
  const settings = plan === 'none' ? undefined : settingsOf(orm, inMode ? { ...options, mode: outer!.mode } : options, 'transaction');
  if (inMode && options.mode !== undefined && options.mode !== outer!.mode) {
    throw ShardingError.invalidOptions(`a nested transaction runs in its outer transaction's mode ('${outer!.mode}'), not '${options.mode}'.`, options.mode);
  }
  return { settings, parent: plan === 'nested' ? outer : undefined };
}

/** The options a `transactional()` callback's shard forks are made with, as MikroORM forks for a transaction. */
export function transactionForkOptions(options: ShardedTransactionOptions): ForkOptions {
  return {
    clear: options.clear ?? false,
    flushMode: options.flushMode,
    cloneEventManager: true,
    loggerContext: options.loggerContext,
    signal: options.signal,
    inflightQueryAbortStrategy: options.inflightQueryAbortStrategy,
  };
}

/** A `transactional()` callback's fork of one shard: a fork of its entity manager's, which forgets what it deletes when `propagate`. */
export function forkForTransaction(parent: SqlEntityManager, options: ForkOptions, propagate: boolean): SqlEntityManager {
  const fork = parent.fork(options) as SqlEntityManager;
  if (propagate) {
    forgetDeletionsInParent(fork, parent);
  }
  return fork;
}

/**
 * After a `transactional()` callback's success: its forks' entities become those of the entity manager of `scope`,
 * as in MikroORM. What it moved leaves the forks of the shards it left; what it `inherited` is pending there no more.
 */
export function absorbTransaction(
  scope: ShardScope,
  pending: PendingWrites,
  forks: ReadonlyMap<ShardId, SqlEntityManager>,
  moved: ReadonlyMap<object, ShardId> | undefined,
  inherited: readonly object[],
): void {
  moved?.forEach((from, entity) => {
    const fork = scope.forks.get(from);
    if (fork !== undefined) {
      releaseEntity(fork, entity);
    }
  });
  forks.forEach((fork, shard) => mergeIntoParent(fork, scope.fork(shard)));
  inherited.forEach(entity => pending.delete(entity));
}
