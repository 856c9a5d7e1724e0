import type { EntityMetadata, EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from './choosers.ts';
import type { ShardedEntityManager } from './ShardedEntityManager.ts';
import type { ShardedMikroORM } from './ShardedMikroORM.ts';

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
}
