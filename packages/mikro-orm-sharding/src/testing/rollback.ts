import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { fleetRunTargets, runBounded, type FleetRunOptions } from '../fleet/run-bounded.ts';
import { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { throwFirstFailure } from '../fleet/settle.ts';

/** A sharded entity manager whose work is rolled back on every shard at the end: one test's database session. */
export interface RollbackScope extends AsyncDisposable {
  /** Use it as `orm.em.fork()`: its fork of each shard is inside a transaction that is never committed. */
  readonly em: ShardedEntityManager;
  /** Rolls back every shard's transaction; safe to call twice. */
  rollback(): Promise<void>;
}

/**
 * Begins a transaction on a fresh fork of every shard (or of `{ shards }`), and gives a sharded entity manager over
 * those forks: what it flushes is visible to it, and rolled back on every shard by `rollback()` or `await using`.
 * The per-connection `sql_session_fixture` of pyramid_sqlalchemy, for a whole fleet. `em.fork()` leaves the
 * transactions, as a fork of a MikroORM transaction's entity manager does; use `em` itself in the test.
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
  const begun = await runBounded(
    ids,
    async id => {
      const fork = orm.shard(id).em.fork() as SqlEntityManager;
      await fork.begin();
      return fork;
    },
    { concurrency },
  );
  const forks = new Map<ShardId, SqlEntityManager>(begun.flatMap(outcome => (outcome.status === 'done' ? [[outcome.shard, outcome.value]] : [])));
  const rollbackAll = async () => {
    const outcomes = await runBounded([...forks.keys()], id => forks.get(id)!.rollback(), { concurrency, keepGoing: true });
    throwFirstFailure('rollback', outcomes);
  };
  if (begun.some(outcome => outcome.status === 'failed')) {
    await rollbackAll().catch(() => undefined);
    throwFirstFailure('begin', begun);
  }
  let rolledBack: Promise<void> | undefined;
  const rollback = () => (rolledBack ??= rollbackAll());
  return { em: ShardedEntityManager.adopt(orm, forks), rollback, [Symbol.asyncDispose]: rollback };
}
