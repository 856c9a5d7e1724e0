import { fleetRunTargets, runBounded, type FleetRunOptions } from '../fleet/run-bounded.ts';
import type { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { throwFirstFailure } from '../fleet/settle.ts';
import type { ShardedTransactionOptions } from '../transactions/settings.ts';
import { ROLLBACK_ONLY } from '../transactions/start.ts';

/** A sharded entity manager whose work is rolled back on every shard at the end: one test's database session. */
export interface RollbackScope extends AsyncDisposable {
  /** Use it as `orm.em.fork()`: it is in a transaction that is never committed. */
  readonly em: ShardedEntityManager;
  /** Rolls back the transaction on every shard it touched; safe to call twice. */
  rollback(): Promise<void>;
}

/**
 * A fresh sharded entity manager in a transaction (`em.begin()`, mode `'multi'` whatever the fleet's default) that is
 * never committed: what it flushes is visible to it, and rolled back on every shard by `rollback()` or `await using`.
 * The transaction begins on a shard when the entity manager first touches it; `{ shards }` begins it on those at
 * once (at most `concurrency` at a time). The per-connection `sql_session_fixture` of pyramid_sqlalchemy, for a
 * whole fleet. Since it never commits, the code under test runs as outside it: a `transactional()` nested in it runs
 * in its own mode (`{ mode }`, else the fleet's, so `{ mode: 'twopc' }` works), and a flush may move rows. `em.fork()` leaves the transaction, as a fork of a MikroORM transaction's entity manager does; use
 * `em` itself in the test (its `transactional()` nests, in savepoints).
 *
 * @example
 * ```ts
 * await using scope = await rollbackScope(orm);
 * scope.em.create(Author, { id: 1, name: 'Ann' });
 * await scope.em.flush(); // rolled back when the scope ends
 * ```
 */
export async function rollbackScope(orm: ShardedMikroORM, options: FleetRunOptions = {}): Promise<RollbackScope> {
  const { ids, concurrency } = fleetRunTargets(orm.shardIds, options, 'rollbackScope()');
  const em = orm.em.fork();
  await em.begin({ mode: 'multi', [ROLLBACK_ONLY]: true } as ShardedTransactionOptions);
  if (options.shards !== undefined) {
    const begun = await runBounded(ids, id => em.enlist(id), { concurrency });
    if (begun.some(outcome => outcome.status === 'failed')) {
      await em.rollback().catch(() => undefined);
      throwFirstFailure('begin', begun);
    }
  }
  let rolledBack: Promise<void> | undefined;
  const rollback = () => (rolledBack ??= em.rollback());
  return { em, rollback, [Symbol.asyncDispose]: rollback };
}
