import type { EntityMetadata, EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from './choosers.ts';
import type { ShardedEntityManager } from './ShardedEntityManager.ts';
import type { ShardedMikroORM } from './ShardedMikroORM.ts';
import type { ShardTransaction } from './transactions/transaction.ts';

/**
 * What the write and read paths need of one sharded entity manager. The facade builds it over its private state,
 * so those paths stay plain functions and the facade stays thin.
 */
export interface ShardScope {
  readonly orm: ShardedMikroORM;
  /** The facade, handed to choosers. */
  readonly em: ShardedEntityManager;
  /** The facade's fork of a shard's entity manager, made on first use. Throws `UNKNOWN_SHARD` naming `source`. */
  fork(shard: ShardId, source?: string): SqlEntityManager;
  /**
   * Awaited before anything runs on a shard's fork: when the entity manager is in a transaction that has not begun
   * on the shard yet, the beginning; otherwise undefined (nothing to wait for, nothing allocated). Throws when the
   * transaction may not touch the shard (`TRANSACTION_SPANS_SHARDS`) or is over (`TRANSACTION_CLOSED`).
   */
  ready(shard: ShardId): Promise<void> | undefined;
  /** Places pending new entities on their shards' forks (choosing and validating), writing nothing; absent when none wait. */
  readonly placePending: (() => Promise<void>) | undefined;
  /** Where this entity manager builds new entities before their shard is known (never flushed). */
  stagingFork(entityName: EntityName<object>): SqlEntityManager;
  /** The forks made so far. */
  readonly forks: ReadonlyMap<ShardId, SqlEntityManager>;
  /** Metadata of an entity (all shards share the entity definitions). */
  meta<T extends object>(entityName: EntityName<T>): EntityMetadata<T>;
  /** Where a known entity lives, or undefined for a new one. */
  shardOf(entity: object): ShardId | undefined;
  /** The shard this entity manager decided for an entity it has not flushed yet. */
  decided(entity: object): ShardId | undefined;
  /** The shard this entity manager is pinned to (`em.fork({ shard })`, a request's `shardResolver`), if any. */
  readonly pinned: ShardId | undefined;
  /** The transaction this entity manager is in, if any (begun or not on any shard yet). */
  readonly transaction: ShardTransaction | undefined;
}

/**
 * Runs `run` on a shard's fork once the shard is ready ({@link ShardScope.ready}): at once (no extra promise turn)
 * outside a transaction, or once the transaction has begun there.
 */
export function onReadyFork<T>(scope: ShardScope, shard: ShardId, run: (fork: SqlEntityManager) => Promise<T>, source?: string): Promise<T> {
  const fork = scope.fork(shard, source);
  const ready = scope.ready(shard);
  return ready === undefined ? run(fork) : ready.then(() => run(fork));
}
