import type { CountOptions, FilterQuery, FindOptions, Primary } from '@mikro-orm/core';
import type { ShardedEntityManager } from './ShardedEntityManager.ts';

/** A shard's name: a key of the `shards` option. */
export type ShardId = string;

/** A value, or a promise of it: choosers may look things up asynchronously (a directory table, say). */
export type MaybePromise<T> = T | Promise<T>;

/** What the {@link ShardChooser} is told about a new entity. */
export interface ShardChooserArgs<Entity extends object = object> {
  /** The new entity, with the data it was created with. */
  readonly entity: Entity;
  /** Its entity name (the class name). */
  readonly entityName: string;
  /** The sharded entity manager that is writing it; `em.shardOf(entity.parent)` tells where a related entity lives. */
  readonly em: ShardedEntityManager;
}

/**
 * Decides where a NEW entity is written. Called once per entity, at its first flush; the answer is remembered.
 *
 * @example
 * ```ts
 * const shardChooser: ShardChooser = ({ entity, entityName, em }) =>
 *   entityName === 'Book' ? em.shardOf((entity as Book).author)! : `s${(entity as Author).id % 4}`;
 * ```
 */
export type ShardChooser = (args: ShardChooserArgs) => MaybePromise<ShardId>;

/** What the {@link IdChooser} is told about a primary-key lookup. */
export interface IdChooserArgs<Entity extends object = object> {
  /** The entity name (the class name). */
  readonly entityName: string;
  /** The primary key looked up. */
  readonly id: Primary<Entity>;
  /** The sharded entity manager doing the lookup. */
  readonly em: ShardedEntityManager;
}

/**
 * Names the shards that may hold the entity with this primary key, in the order to search them;
 * the first shard that has it wins.
 *
 * @example
 * ```ts
 * const idChooser: IdChooser = () => ['hot', 'archive'];
 * ```
 */
export type IdChooser = (args: IdChooserArgs) => MaybePromise<readonly ShardId[]>;

/** What the {@link QueryChooser} is told about a query. */
export interface QueryChooserArgs<Entity extends object = object> {
  /** The entity name (the class name). */
  readonly entityName: string;
  /** The query's condition, as given. */
  readonly where: FilterQuery<Entity>;
  /** The query's options (`orderBy`, `limit`, ...), as given. */
  readonly options: FindOptions<Entity, string, string, string> | CountOptions<Entity, string>;
  /** The sharded entity manager running the query. */
  readonly em: ShardedEntityManager;
}

/**
 * Names the shards a query fans out to. Without an `orderBy`, results come shard after shard in this order.
 *
 * @example
 * ```ts
 * const queryChooser: QueryChooser = ({ where }) =>
 *   typeof where === 'object' && 'tenant' in where ? [String(where.tenant)] : allShardIds;
 * ```
 */
export type QueryChooser = (args: QueryChooserArgs) => MaybePromise<readonly ShardId[]>;
