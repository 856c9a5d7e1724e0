import type { CountOptions, FilterQuery, FindOptions, Primary } from '@mikro-orm/core';
import type { ShardedEntityManager } from './ShardedEntityManager.ts';

/** A shard's name: a key of the `shards` option. */
export type ShardId = string;

/** A value, or a promise of it: choosers may look things up asynchronously (a directory table, say). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What a chooser may return: one of the fleet's ids, or any string computed at run time (`` `s${id % 4}` ``), which
 * is checked when it is returned (`UNKNOWN_SHARD`). Ids you pass yourself (`{ shard }`, `em.on()`) are checked
 * by the compiler instead.
 */
export type ChosenShard<Id extends string = ShardId> = Id | (string & {});

/**
 * What the {@link ShardChooser} is told about a new entity. `Entity` is the union of your entity classes when
 * `ShardedMikroORM.init()` can see them (`entities: [Author, Book]`), so `entity instanceof Book` narrows it.
 */
export interface ShardChooserArgs<Entity extends object = object, Id extends string = ShardId> {
  /** The new entity, with the data it was created with (for `upsert`/`insert` of plain data: an entity built from it). */
  readonly entity: Entity;
  /** Its entity name (the class name). */
  readonly entityName: string;
  /** The sharded entity manager that is writing it; `em.shardOf(entity.parent)` tells where a related entity lives. */
  readonly em: ShardedEntityManager<Id>;
}

/**
 * Decides where a NEW entity is written. Called once per entity, at its first flush (or by `upsert`/`insert`); the
 * answer is remembered. `Id` is the fleet's shard ids, `Entity` what it may be given. For an entity declared in
 * `shardBy`, answer `undefined` to let the declaration decide (an answer of your own must agree with its key).
 *
 * @example
 * ```ts
 * const shardChooser: ShardChooser<'s0' | 's1' | 's2' | 's3', Author | Book> = ({ entity, em }) =>
 *   entity instanceof Book ? em.shardOf(entity.author)! : `s${entity.id % 4}`;
 * ```
 */
export type ShardChooser<Id extends string = ShardId, Entity extends object = object> = (
  args: ShardChooserArgs<Entity, Id>,
) => MaybePromise<ChosenShard<Id> | undefined>;

/** What the {@link IdChooser} is told about a primary-key lookup. */
export interface IdChooserArgs<Entity extends object = object, Id extends string = ShardId> {
  /** The entity name (the class name). */
  readonly entityName: string;
  /** The primary key looked up. */
  readonly id: Primary<Entity>;
  /** The sharded entity manager doing the lookup. */
  readonly em: ShardedEntityManager<Id>;
}

/**
 * Names the shards that may hold the entity with this primary key, in the order to search them;
 * the first shard that has it wins. For an entity declared in `shardBy`, `undefined` lets the declaration decide.
 *
 * @example
 * ```ts
 * const idChooser: IdChooser = () => ['hot', 'archive'];
 * ```
 */
export type IdChooser<Id extends string = ShardId> = (args: IdChooserArgs<object, Id>) => MaybePromise<readonly ChosenShard<Id>[] | undefined>;

/** What the {@link QueryChooser} is told about a query. */
export interface QueryChooserArgs<Entity extends object = object, Id extends string = ShardId> {
  /** The entity name (the class name). */
  readonly entityName: string;
  /** The query's condition, as given. */
  readonly where: FilterQuery<Entity>;
  /** The query's options (`orderBy`, `limit`, ...), as given. */
  readonly options: FindOptions<Entity, string, string, string> | CountOptions<Entity, string>;
  /** The sharded entity manager running the query. */
  readonly em: ShardedEntityManager<Id>;
  /**
   * The values the condition pins the entity's declared shard key to (`{ tenantId: 't1' }`, `$eq`, `$in`, inside
   * `$and`; through the parent relation for an entity that follows one), or undefined when it does not pin them or
   * the entity is not in `shardBy`. Computed when read.
   */
  readonly shardKeys: readonly unknown[] | undefined;
}

/**
 * Names the shards a query fans out to. Without an `orderBy`, results come shard after shard in this order. For an
 * entity declared in `shardBy`, `undefined` lets the declaration prune the query.
 *
 * @example
 * ```ts
 * const queryChooser: QueryChooser = ({ where }) =>
 *   typeof where === 'object' && 'tenant' in where ? [String(where.tenant)] : allShardIds;
 * ```
 */
export type QueryChooser<Id extends string = ShardId> = (args: QueryChooserArgs<object, Id>) => MaybePromise<readonly ChosenShard<Id>[] | undefined>;
