import {
  FlushMode,
  helper,
  Reference,
  Utils,
  ValidationError,
  type AssignOptions,
  type AutoPath,
  type CountOptions,
  type DeleteOptions,
  type Dictionary,
  type EntityData,
  type CreateOptions,
  type EntityDTO,
  type EntityLoaderOptions,
  type EntityMetadata,
  type EntityName,
  type EntityRepository,
  type FilterDef,
  type FilterQuery,
  type FindAllOptions,
  type FindOneOptions,
  type FindOneOrFailOptions,
  type FindOptions,
  type ForkOptions,
  type FromEntityType,
  type GetReferenceOptions,
  type GetRepository,
  type IDatabaseDriver,
  type IsSubset,
  type Loaded,
  type MergeLoaded,
  type MergeSelected,
  type MetadataStorage,
  type NativeInsertUpdateOptions,
  type PopulatePath,
  type Primary,
  type Ref,
  type RequiredEntityData,
  type UnboxArray,
  type UpdateOptions,
  type UpsertManyOptions,
  type UpsertOptions,
} from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from './choosers.ts';
import { ShardingError } from './errors/errors.ts';
import * as reads from './read/read-path.ts';
import { populateOnShards } from './read/populate.ts';
import { referenceFork } from './read/reference.ts';
import { refreshOnShard } from './read/refresh.ts';
import { ShardedRequestContext } from './fleet/request-context.ts';
import type { ShardScope } from './scope.ts';
import { metadataOf } from './fleet/fleet-metadata.ts';
import { PendingWrites } from './write/pending-writes.ts';
import { knownShard } from './write/shard-of.ts';
import { createEntity, flushPending, moveAll, NO_OPTIONS, persistAll, removeAll } from './write/unit-of-work.ts';
import { ShardFilters } from './filters.ts';
import { repositoryFor, type ShardedRepository } from './repository.ts';
import * as routed from './write/routed-writes.ts';
import type { ShardedMikroORM } from './ShardedMikroORM.ts';
import type { ShardErrorOption } from './read/partial.ts';
import { ShardTransaction } from './transactions/transaction.ts';
import { notAcrossShards } from './unsupported.ts';
import { absorbTransaction, forkForTransaction, nestedStartOf, transactionForkOptions } from './transactions/nesting.ts';
import { runTransaction } from './transactions/run.ts';
import { settingsOf } from './transactions/start.ts';
import { transactionEntityManager } from './transactions/context.ts';
import type { ShardedTransactionOptions } from './transactions/settings.ts';

/** Targets one shard explicitly. Precedence: this option, then the entity's remembered shard, then the choosers. */
export interface ShardOption<Id extends string = ShardId> {
  /** The shard to use; must be a configured shard id (a compile error for an unknown literal when ids are typed). */
  readonly shard?: Id;
}

/**
 * MikroORM's EntityManager surface over a fleet of shards. It holds one fork per shard it touches (made on first
 * use), so every entity lives in exactly one shard fork's identity map, and lazy loads stay on that shard.
 * Writes are routed by the shard chooser, primary-key reads by the id chooser, queries by the query chooser.
 */
export class ShardedEntityManager<Id extends string = ShardId> {
  readonly #orm: ShardedMikroORM;
  readonly #global: boolean;
  readonly #makeFork: (shard: ShardId) => SqlEntityManager;
  readonly #forks = new Map<ShardId, SqlEntityManager>();
  readonly #pending: PendingWrites;
  readonly #scope: ShardScope;
  // Made on first use: most entity managers never set a filter, and fork() runs per request.
  #filters: ShardFilters | undefined;
  #repositories: Map<EntityMetadata, object> | undefined;
  #pinned: ShardId | undefined;
  /** The transaction this entity manager is in (begun with `begin()`, or made by `transactional()`). */
  #transaction: ShardTransaction | undefined;
  /** A `transactional()` callback's entity manager with `ignoreNestedTransactions`, or one run outside any transaction. */
  #transactionsDisabled = false;

  /** @internal Use `orm.em.fork()`. */
  constructor(orm: ShardedMikroORM, global: boolean, makeFork: (shard: ShardId) => SqlEntityManager, filters?: ShardFilters, pinned?: ShardId) {
    this.#orm = orm;
    this.#global = global;
    this.#makeFork = makeFork;
    this.#filters = filters;
    this.#pinned = pinned;
    const self = this;
    this.#scope = {
      orm,
      em: this,
      forks: this.#forks,
      fork: (shard, source) => self.#fork(shard, source),
      ready: shard => self.#transaction?.ready(shard),
      stagingFork: entityName => self.#pending.stagingFork(entityName),
      get placePending() {
        // A chooser reading through `em` while entities are being placed must not place them again (forever).
        return self.#pending.size > 0 && !self.#pending.insideChooser() ? () => self.#pending.place(false) : undefined;
      },
      meta: entityName => metadataOf(orm, entityName),
      shardOf: entity => self.shardOf(entity),
      decided: entity => self.#pending.decided(entity),
      get pinned() {
        return self.#pinned;
      },
      get transaction() {
        return self.#transaction?.active ? self.#transaction : undefined;
      },
    };
    this.#pending = new PendingWrites(this.#scope);
  }

  /** @internal The fleet's global entity manager. */
  static global(orm: ShardedMikroORM): ShardedEntityManager {
    return new ShardedEntityManager(orm, true, shard => orm.shard(shard).em as SqlEntityManager);
  }

  /** @internal An entity manager over a request context's shard forks, each made when first used. */
  static adopt(orm: ShardedMikroORM, forkOf: (shard: ShardId) => SqlEntityManager): ShardedEntityManager {
    return new ShardedEntityManager(orm, false, forkOf);
  }

  /** @internal Pins an entity manager to a shard (a request's `shardResolver`); see {@link fork}. */
  static pin(em: ShardedEntityManager, shard: ShardId): void {
    if (!em.#orm.fleet.has(shard)) {
      throw em.#orm.fleet.notRegistered(shard, { source: 'shardResolver' });
    }
    em.#pinned = shard;
  }

  /** The fleet this entity manager belongs to. */
  get orm(): ShardedMikroORM<IDatabaseDriver, Id> {
    return this.#orm as ShardedMikroORM<IDatabaseDriver, Id>;
  }

  /**
   * The shard this entity manager is pinned to (`fork({ shard })`, or a request's `shardResolver`): what it routes
   * every call to that names no `{ shard }` and reaches no bound or already placed entity. Undefined when the
   * choosers route.
   */
  get pinnedShard(): Id | undefined {
    return this.#context(false).#pinned as Id | undefined;
  }

  /**
   * A new sharded entity manager with empty identity maps; shard forks are made with `options` on first use. Like
   * MikroORM's `fork()`, it starts with this entity manager's filters and filter parameters, and its pinned shard.
   * `{ shard }` pins the new one to a shard: new entities are written there, primary-key lookups and queries read
   * it alone, without asking the choosers (bound entities and `{ shard }` options still win).
   */
  fork(options?: ForkOptions & ShardOption<Id>): ShardedEntityManager<Id> {
    const parent = this.#context(false);
    const { shard, ...forkOptions } = options ?? {};
    if (shard !== undefined && !this.#orm.fleet.has(shard)) {
      throw this.#orm.fleet.notRegistered(shard, { source: 'em.fork()' });
    }
    const own = options === undefined ? undefined : forkOptions;
    const makeFork = (id: ShardId) => (parent.#forks.get(id) ?? this.#orm.shard(id).em).fork(own) as SqlEntityManager;
    return new ShardedEntityManager<Id>(this.#orm, false, makeFork, parent.#filters?.copy(), shard ?? parent.#pinned);
  }

  /**
   * This entity manager's own fork for one shard: plain MikroORM, for anything the sharded surface lacks. Inside a
   * transaction it is in the shard's transaction once the transaction has touched the shard: use {@link enlist}.
   */
  on(shard: Id): SqlEntityManager {
    return this.#context().#fork(shard, 'em.on()');
  }

  /**
   * {@link on}, inside this entity manager's transaction on that shard (begun there now if the transaction had not
   * touched it yet). Outside a transaction it is `on(shard)`.
   */
  async enlist(shard: Id): Promise<SqlEntityManager> {
    const em = this.#context();
    const fork = em.#fork(shard, 'em.enlist()');
    const ready = em.#transaction?.ready(shard);
    if (ready) {
      await ready;
    }
    return fork;
  }

  /** The shard an entity lives on (written to, created with `{ shard }`, or loaded from); undefined while new. */
  shardOf(entity: object): Id | undefined {
    const target = Reference.unwrapReference(entity);
    return (this.#context(false).#pending.decided(target) ?? knownShard(target, this.#orm.fleet)) as Id | undefined;
  }

  /** Creates an entity; with `{ shard }` it is bound to that shard, otherwise the shard chooser places it at flush. */
  create<Entity extends object>(
    entityName: EntityName<Entity>,
    data: RequiredEntityData<Entity>,
    options: CreateOptions<boolean> & ShardOption<Id> = NO_OPTIONS,
  ): Entity {
    const em = this.#context();
    return createEntity(em.#scope, em.#pending, entityName, data, options);
  }

  /** Marks entities for writing at the next flush; new ones get their shard then. */
  persist(entity: object | Iterable<object>): this {
    persistAll(this.#orm, this.#context().#pending, entity);
    return this;
  }

  /** Marks entities for removal (on their own shards) at the next flush. */
  remove(entity: object | Iterable<object>): this {
    const em = this.#context();
    removeAll(em.#scope, em.#pending, entity);
    return this;
  }

  /**
   * Decides and validates the shard of everything to be written (throwing a {@link ShardingError} before any
   * write if a chooser fails, names an unknown shard, or a reference crosses shards), then flushes every shard
   * fork in parallel. Inside a transaction the writes are part of it; outside one, a flush that writes several
   * shards commits as the fleet's `transactionMode` says (see docs/transactions.md).
   */
  async flush(): Promise<void> {
    const em = this.#context();
    return flushPending(em.#scope, em.#pending, em.#transaction);
  }

  /**
   * Moves entities to another shard at the next flush, as `remove()` removes them then. The flush copies each row to
   * `shard` and deletes it where it was, with the rows that follow it through `{ parent }` (loaded or not) and its
   * join-table rows, in one two-phase commit (PostgreSQL with `twoPhaseCommit`): all of it, or nothing. Afterwards the
   * entities belong to `shard` (`shardOf()` says so, lookups find them there). A row another entity references, and
   * which would leave it behind, is refused (`CROSS_SHARD_REFERENCE`); so is a move the fleet cannot make
   * (`MOVE_NOT_POSSIBLE`, naming why). For an entity declared in `shardBy`, change its key instead: the flush moves it
   * where the key maps. See docs/strategies.md.
   */
  move(entity: object | Iterable<object>, shard: Id): this {
    const em = this.#context();
    moveAll(em.#scope, em.#pending, entity, shard);
    return this;
  }

  /**
   * Runs `cb` in a transaction, as MikroORM's `em.transactional()`: `cb` gets a fork of this entity manager (with its
   * entities, unless `clear`), which is flushed after it; the transaction then commits and the fork's entities
   * become this entity manager's, and `cb`'s result is returned. A throw rolls back on every shard and is rethrown.
   * The transaction begins on a shard when it first touches it, with `isolationLevel` and `readOnly`; a nested call
   * opens savepoints. `mode` says how it commits across shards (the fleet's `transactionMode` by default), and
   * `propagation` works as in MikroORM (`NESTED` by default).
   */
  async transactional<T>(cb: (em: ShardedEntityManager<Id>) => T | Promise<T>, options: ShardedTransactionOptions = {}): Promise<T> {
    const em = this.#context(false);
    const start = em.#transactionsOff() ? 'join' : nestedStartOf(this.#orm, em.#transaction?.active ? em.#transaction : undefined, options);
    if (start === 'join') {
      return cb(em as ShardedEntityManager<Id>);
    }
    const { child, inherited } = em.#transactionFork(options);
    if (start.settings) {
      child.#transaction = new ShardTransaction(child.#scope, start.settings, start.parent);
    } else {
      child.#transactionsDisabled = true;
    }
    const result = await runTransaction(child as ShardedEntityManager<Id>, child.#transaction, cb);
    em.#absorb(child, inherited);
    return result;
  }

  /**
   * Starts a transaction bound to this entity manager, as MikroORM's `em.begin()`: it begins on each shard when
   * this entity manager first touches it. End it with {@link commit} or {@link rollback}.
   */
  async begin(options: Omit<ShardedTransactionOptions, 'propagation' | 'clear' | 'flushMode' | 'ignoreNestedTransactions'> = {}): Promise<void> {
    const em = this.#context(false);
    if (em.#transactionsOff()) {
      return;
    }
    if (em.#transaction?.active) {
      throw ShardingError.invalidOptions('this entity manager is in a transaction already; commit or roll it back first, or use transactional() to nest one.');
    }
    em.#transaction = new ShardTransaction(em.#scope, settingsOf(this.#orm, options, 'transaction'));
  }

  /**
   * Flushes, then commits the transaction begun with {@link begin} on every shard it touched, the mode's way. When
   * the commit fails, what it did not commit is rolled back; `rollback()` may still be called, as after a failed
   * commit in MikroORM.
   */
  async commit(): Promise<void> {
    const em = this.#context(false);
    if (em.#transactionsOff()) {
      return em.flush();
    }
    const transaction = em.#transaction;
    if (!transaction?.open) {
      throw ValidationError.transactionRequired();
    }
    await em.flush();
    await transaction.commit();
    em.#transaction = undefined;
  }

  /** Rolls back the transaction begun with {@link begin} on every shard it touched. */
  async rollback(): Promise<void> {
    const em = this.#context(false);
    if (em.#transactionsOff()) {
      return;
    }
    const transaction = em.#transaction;
    if (!transaction) {
      throw ValidationError.transactionRequired();
    }
    em.#transaction = undefined;
    await transaction.rollback();
  }

  /** Whether this entity manager is in a transaction (which may not have touched any shard yet). */
  isInTransaction(): boolean {
    return this.#context(false).#transaction?.active === true;
  }

  /** Drops pending entities and clears every shard fork's identity map. */
  clear(): void {
    const em = this.#context();
    em.#pending.clear();
    em.#forks.forEach(fork => fork.clear());
  }

  /** Finds entities on the query chooser's shards, merged in the global `orderBy`, paged by `limit`/`offset`. */
  async find<Entity extends object, Hint extends string = never, Fields extends string = never, Excludes extends string = never>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>>,
    options: FindOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> & ShardErrorOption = {},
  ): Promise<Loaded<Entity, Hint, Fields, Excludes>[]> {
    const { shard, onShardError, ...rest } = options;
    const em = this.#context();
    return reads.find(em.#scope, entityName, where, em.#readOptions(rest), shard, onShardError) as Promise<Loaded<Entity, Hint, Fields, Excludes>[]>;
  }

  /** `find` with the condition in `options.where`. */
  async findAll<Entity extends object, Hint extends string = never, Fields extends string = never, Excludes extends string = never>(
    entityName: EntityName<Entity>,
    options: FindAllOptions<NoInfer<Entity>, Hint, Fields, Excludes> & ShardOption<Id> & ShardErrorOption = {},
  ): Promise<Loaded<Entity, Hint, Fields, Excludes>[]> {
    const { where, ...rest } = options;
    return this.find(
      entityName,
      (where ?? {}) as FilterQuery<NoInfer<Entity>>,
      rest as FindOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> & ShardErrorOption,
    );
  }

  /**
   * By primary key (`5`, `{ id: 5 }`, an entity): identity maps first, then the id chooser's candidates in order,
   * first hit wins. Any other condition is a query over the query chooser's shards (the first row in `orderBy`).
   */
  findOne<Entity extends object, Hint extends string = never, Fields extends string = never, Excludes extends string = never>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>>,
    options: FindOneOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> = NO_OPTIONS,
  ): Promise<Loaded<Entity, Hint, Fields, Excludes> | null> {
    // Not async (a lookup by primary key is the hottest read), yet every error still arrives as a rejection.
    try {
      const em = this.#context();
      if (options === NO_OPTIONS) {
        return reads.findOne(em.#scope, entityName, where, em.#readOptions(options), undefined) as Promise<Loaded<Entity, Hint, Fields, Excludes> | null>;
      }
      const { shard, ...rest } = options;
      return reads.findOne(em.#scope, entityName, where, em.#readOptions(rest), shard) as Promise<Loaded<Entity, Hint, Fields, Excludes> | null>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `findOne`, throwing MikroORM's `NotFoundError` (or your `failHandler`'s error) when nothing matches. */
  async findOneOrFail<Entity extends object, Hint extends string = never, Fields extends string = never, Excludes extends string = never>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>>,
    options: FindOneOrFailOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> = {},
  ): Promise<Loaded<Entity, Hint, Fields, Excludes>> {
    const { failHandler, strict, ...rest } = options;
    // Never partial: a row on a shard that did not answer is not "not found".
    const found = strict
      ? await this.find(entityName, where, { ...rest, limit: 2, onShardError: 'fail' } as FindOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id>)
      : [await this.findOne(entityName, where, rest as FindOneOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id>)];
    if (found.length !== 1 || !found[0]) {
      const config = this.#pending.stagingFork(entityName as EntityName<object>).config;
      const handler = failHandler ?? config.get(strict ? 'findExactlyOneOrFailHandler' : 'findOneOrFailHandler');
      throw handler(Utils.className(entityName), where as never);
    }
    return found[0];
  }

  /** One page and the total count over the same shards (counts summed). */
  async findAndCount<Entity extends object, Hint extends string = never, Fields extends string = never, Excludes extends string = never>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>>,
    options: FindOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> & ShardErrorOption = {},
  ): Promise<[Loaded<Entity, Hint, Fields, Excludes>[], number]> {
    const { shard, onShardError, ...rest } = options;
    const em = this.#context();
    return reads.findAndCount(em.#scope, entityName, where, em.#readOptions(rest), shard, onShardError) as Promise<
      [Loaded<Entity, Hint, Fields, Excludes>[], number]
    >;
  }

  /** Counts on the query chooser's shards, summed. */
  async count<Entity extends object, Hint extends string = never>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>> = {} as FilterQuery<NoInfer<Entity>>,
    options: CountOptions<Entity, Hint> & ShardOption<Id> & ShardErrorOption = {},
  ): Promise<number> {
    const { shard, onShardError, ...rest } = options;
    const em = this.#context();
    return reads.count(em.#scope, entityName, where, em.#readOptions(rest), shard, onShardError);
  }

  /**
   * Updates the rows matching `where` on the query chooser's shards, bypassing the unit of work (like MikroORM's
   * `nativeUpdate`); returns the number of rows affected on all of them.
   */
  async nativeUpdate<Entity extends object>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>>,
    data: EntityData<Entity>,
    options: UpdateOptions<Entity> & ShardOption<Id> = {},
  ): Promise<number> {
    const { shard, ...rest } = options;
    return reads.nativeWrite(this.#context().#scope, 'nativeUpdate', entityName, where, rest, shard, fork =>
      fork.nativeUpdate(entityName, where as never, data, rest),
    );
  }

  /** Deletes the rows matching `where` on the query chooser's shards (like MikroORM's `nativeDelete`); returns the total. */
  async nativeDelete<Entity extends object>(
    entityName: EntityName<Entity>,
    where: FilterQuery<NoInfer<Entity>>,
    options: DeleteOptions<Entity> & ShardOption<Id> = {},
  ): Promise<number> {
    const { shard, ...rest } = options;
    return reads.nativeWrite(this.#context().#scope, 'nativeDelete', entityName, where, rest, shard, fork =>
      fork.nativeDelete(entityName, where as never, rest),
    );
  }

  /**
   * Reloads an entity from its shard, overriding unflushed changes; null when the row is gone. The shard: `{ shard }`
   * (for an entity whose shard is not known, such as one made with `new`), else the entity's own.
   */
  async refresh<
    Entity extends object,
    Naked extends FromEntityType<Entity> = FromEntityType<Entity>,
    Hint extends string = never,
    Fields extends string = never,
    Excludes extends string = never,
  >(
    entity: Entity,
    options: FindOneOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> = {},
  ): Promise<MergeLoaded<Entity, Naked, Hint, Fields, Excludes, true> | null> {
    const { shard, ...rest } = options;
    return refreshOnShard(this.#context().#scope, entity, shard, rest as FindOneOptions<Entity>, false) as Promise<MergeLoaded<
      Entity,
      Naked,
      Hint,
      Fields,
      Excludes,
      true
    > | null>;
  }

  /** `refresh`, throwing MikroORM's `NotFoundError` (or your `failHandler`'s error) when the row is gone. */
  async refreshOrFail<
    Entity extends object,
    Naked extends FromEntityType<Entity> = FromEntityType<Entity>,
    Hint extends string = never,
    Fields extends string = never,
    Excludes extends string = never,
  >(
    entity: Entity,
    options: FindOneOrFailOptions<Entity, Hint, Fields, Excludes> & ShardOption<Id> = {},
  ): Promise<MergeLoaded<Entity, Naked, Hint, Fields, Excludes, true>> {
    const { shard, ...rest } = options;
    return refreshOnShard(this.#context().#scope, entity, shard, rest as FindOneOptions<Entity>, true) as Promise<
      MergeLoaded<Entity, Naked, Hint, Fields, Excludes, true>
    >;
  }

  /**
   * A reference without a query. Its shard: `{ shard }`, else an identity map that has it, else the id chooser's
   * only candidate; with several candidates it throws `AMBIGUOUS_SHARD` (use `findOne`, which searches them).
   * `{ wrapped: true }` gives a `Ref<Entity>`; `{ key }` (an alternate key) needs `{ shard }`.
   */
  getReference<Entity extends object, K extends string & keyof Entity>(
    entityName: EntityName<Entity>,
    id: Entity[K],
    options: Omit<GetReferenceOptions, 'key' | 'wrapped'> & { key: K; wrapped: true } & ShardOption<Id>,
  ): Ref<Entity>;
  getReference<Entity extends object, K extends string & keyof Entity>(
    entityName: EntityName<Entity>,
    id: Entity[K],
    options: Omit<GetReferenceOptions, 'key'> & { key: K; wrapped?: false } & ShardOption<Id>,
  ): Entity;
  getReference<Entity extends object>(
    entityName: EntityName<Entity>,
    id: Primary<Entity>,
    options: Omit<GetReferenceOptions, 'wrapped' | 'key'> & { wrapped: true } & ShardOption<Id>,
  ): Ref<Entity>;
  getReference<Entity extends object>(entityName: EntityName<Entity>, id: Primary<Entity> | Primary<Entity>[]): Entity;
  getReference<Entity extends object>(
    entityName: EntityName<Entity>,
    id: Primary<Entity>,
    options: Omit<GetReferenceOptions, 'wrapped' | 'key'> & { wrapped?: false } & ShardOption<Id>,
  ): Entity;
  getReference<Entity extends object>(
    entityName: EntityName<Entity>,
    id: Primary<Entity>,
    options?: GetReferenceOptions & ShardOption<Id>,
  ): Entity | Reference<Entity>;
  getReference<Entity extends object>(
    entityName: EntityName<Entity>,
    id: Primary<Entity>,
    options: GetReferenceOptions & ShardOption<Id> = {},
  ): Entity | Reference<Entity> {
    const { shard, ...rest } = options;
    const fork = referenceFork(this.#context().#scope, entityName as EntityName<object>, id as Primary<object>, shard, rest.key);
    return fork.getReference(entityName, id, rest as GetReferenceOptions);
  }

  /**
   * Loads relations of entities you hold, each on its own shard (shards in parallel); resolves to what it was given,
   * typed as loaded, like MikroORM's `populate`.
   */
  async populate<
    Entity extends object,
    Naked extends FromEntityType<UnboxArray<Entity>> = FromEntityType<UnboxArray<Entity>>,
    Hint extends string = never,
    Fields extends string = never,
    Excludes extends string = never,
  >(
    entities: Entity,
    populate: readonly AutoPath<Naked, Hint, PopulatePath.ALL>[] | false,
    options: EntityLoaderOptions<Naked, Fields, Excludes> = {},
  ): Promise<Entity extends object[] ? MergeLoaded<ElementOf<Entity>, Naked, Hint, Fields, Excludes>[] : MergeLoaded<Entity, Naked, Hint, Fields, Excludes>> {
    type Populated = Entity extends object[]
      ? MergeLoaded<ElementOf<Entity>, Naked, Hint, Fields, Excludes>[]
      : MergeLoaded<Entity, Naked, Hint, Fields, Excludes>;
    await populateOnShards(this.#context().#scope, Array.isArray(entities) ? entities : [entities], populate, options);
    return entities as unknown as Populated;
  }

  /**
   * Inserts one row with a native query (no unit of work), on the shard a new entity with this data would go to:
   * `{ shard }`, else the shard of an entity already known by this primary key, else the shard chooser (which is
   * given an entity built from the data). Resolves to its primary key.
   */
  async insert<Entity extends object>(
    entityNameOrEntity: EntityName<Entity> | Entity,
    data?: NoInfer<RequiredEntityData<Entity> | Entity>,
    options: NativeInsertUpdateOptions<Entity> & ShardOption<Id> = {},
  ): Promise<Primary<Entity>> {
    const { shard, ...rest } = options;
    const [entityName, rows] = routed.rowsOf<Entity>(entityNameOrEntity, data === undefined ? undefined : [data]);
    const [pk] = await routed.insertMany(this.#context(false).#scope, entityName, rows, rest, shard);
    return pk as Primary<Entity>;
  }

  /**
   * Inserts rows with native queries (no unit of work), each routed as {@link insert} routes one, grouped into one
   * MikroORM `insertMany` per shard. Every row's shard is decided and checked before any shard is written.
   * Resolves to the primary keys in input order.
   */
  async insertMany<Entity extends object>(
    entityNameOrEntities: EntityName<Entity> | Entity[],
    data?: NoInfer<RequiredEntityData<Entity>[] | Entity[]>,
    options: NativeInsertUpdateOptions<Entity> & ShardOption<Id> = {},
  ): Promise<Primary<Entity>[]> {
    const { shard, ...rest } = options;
    const [entityName, rows] = routed.rowsOf<Entity>(entityNameOrEntities, data);
    return routed.insertMany(this.#context(false).#scope, entityName, rows, rest, shard) as Promise<Primary<Entity>[]>;
  }

  /**
   * Creates or updates an entity with MikroORM's `upsert` (insert ... on conflict) on its shard, routed like
   * {@link insert} (an entity you hold goes to its own shard). Resolves to the managed entity, on its shard's fork.
   */
  async upsert<Entity extends object, Fields extends string = never>(
    entityNameOrEntity: EntityName<Entity> | Entity,
    data?: EntityData<Entity> | NoInfer<Entity>,
    options: UpsertOptions<Entity, Fields> & ShardOption<Id> = {},
  ): Promise<Entity> {
    const { shard, ...rest } = options;
    const [entityName, rows] = routed.rowsOf<Entity>(entityNameOrEntity, data === undefined ? undefined : [data]);
    const [entity] = await routed.upsertMany(this.#context(false).#scope, entityName, rows, rest, shard, 'upsert');
    return entity as Entity;
  }

  /**
   * `upsert` for many rows: each routed as {@link upsert} routes one, grouped into one MikroORM `upsertMany` per
   * shard, all checked before any shard is written. Resolves to the managed entities in input order.
   */
  async upsertMany<Entity extends object, Fields extends string = never>(
    entityNameOrEntities: EntityName<Entity> | Entity[],
    data?: (EntityData<Entity> | NoInfer<Entity>)[],
    options: UpsertManyOptions<Entity, Fields> & ShardOption<Id> = {},
  ): Promise<Entity[]> {
    const { shard, ...rest } = options;
    const [entityName, rows] = routed.rowsOf<Entity>(entityNameOrEntities, data);
    return routed.upsertMany(this.#context(false).#scope, entityName, rows, rest, shard, 'upsertMany') as Promise<Entity[]>;
  }

  /**
   * The repository of an entity over this sharded entity manager: your `repository: () => BookRepository` class
   * (or the configured `entityRepository`, else MikroORM's), constructed with this entity manager, so its inherited
   * methods (`find`, `findOne`, `upsert`, ...) run sharded. `getEntityManager()` returns this entity manager.
   */
  getRepository<Entity extends object, Repository extends EntityRepository<Entity> = EntityRepository<Entity>>(
    entityName: EntityName<Entity>,
  ): ShardedRepository<GetRepository<Entity, Repository>, Id> {
    const meta = this.#scope.meta(entityName);
    this.#repositories ??= new Map();
    let repository = this.#repositories.get(meta);
    if (!repository) {
      repository = repositoryFor(this.#orm, this, entityName as EntityName<object>);
      this.#repositories.set(meta, repository);
    }
    return repository as ShardedRepository<GetRepository<Entity, Repository>, Id>;
  }

  /** Shortcut for {@link getRepository}. */
  repo<Entity extends object, Repository extends EntityRepository<Entity> = EntityRepository<Entity>>(
    entityName: EntityName<Entity>,
  ): ShardedRepository<GetRepository<Entity, Repository>, Id> {
    return this.getRepository<Entity, Repository>(entityName);
  }

  /**
   * Registers a filter on every shard fork of this entity manager, those it has and those it makes later, as
   * MikroORM's `addFilter` does on one entity manager. On the global `orm.em` it applies to every shard's global
   * entity manager, so forks and request contexts made afterwards inherit it.
   */
  addFilter<T extends EntityName | readonly EntityName[]>(options: Omit<FilterDef<T>, 'rls'>): void {
    const em = this.#context(false);
    (em.#filters ??= new ShardFilters()).add(options, em.#filterTargets());
  }

  /** Sets a filter's parameters on every shard fork of this entity manager, present and future. */
  setFilterParams(name: string, args: Dictionary): void {
    const em = this.#context();
    (em.#filters ??= new ShardFilters()).setParams(name, args, em.#filterTargets());
  }

  /** The parameters set for a filter with {@link setFilterParams} (or inherited from the entity manager forked). */
  getFilterParams<T extends Dictionary = Dictionary>(name: string): T {
    return this.#context().#filters?.params(name) as T;
  }

  /**
   * Assigns data to an entity, as MikroORM's `em.assign` (`wrap(entity).assign(data, { em })`) with the entity's own
   * shard fork, so references made from primary keys belong to its shard (a new entity's: where it waits for one).
   */
  assign<
    Entity extends object,
    Naked extends FromEntityType<Entity> = FromEntityType<Entity>,
    Convert extends boolean = false,
    Data extends EntityData<Naked, Convert> | Partial<EntityDTO<Naked>> = EntityData<Naked, Convert> | Partial<EntityDTO<Naked>>,
  >(
    entity: Entity | Partial<Entity>,
    data: Data & IsSubset<EntityData<Naked, Convert>, Data>,
    options?: AssignOptions<Convert>,
  ): MergeSelected<Entity, Naked, keyof Data & string> {
    const em = this.#context();
    const shard = em.shardOf(entity);
    const fork = shard === undefined ? em.#pending.stagingFork(helper(entity).__meta.class) : em.#fork(shard);
    return fork.assign(entity, data as never, options) as MergeSelected<Entity, Naked, keyof Data & string>;
  }

  /** Whether a property of an entity can be populated (MikroORM's `canPopulate`; entity definitions are shared by the shards). */
  canPopulate<Entity extends object>(entityName: EntityName<Entity>, property: string): boolean {
    return this.#pending.stagingFork(entityName as EntityName<object>).canPopulate(entityName, property);
  }

  /** MikroORM's metadata of the first shard that knows the entity (of the first shard without one): shards share definitions. */
  getMetadata(): MetadataStorage;
  getMetadata<Entity extends object>(entityName: EntityName<Entity>): EntityMetadata<Entity>;
  getMetadata<Entity extends object>(entityName?: EntityName<Entity>): MetadataStorage | EntityMetadata<Entity> {
    return entityName === undefined ? this.#orm.fleet.defaultMetadata : this.#scope.meta(entityName);
  }

  /** Not available across shards: a query builder, a stream or a cursor runs on one database. Use `em.on(shard)`. */
  createQueryBuilder(): never {
    throw notAcrossShards('createQueryBuilder()');
  }

  /** Not available across shards: see {@link createQueryBuilder}. */
  qb(): never {
    throw notAcrossShards('qb()');
  }

  /** Not available across shards: see {@link createQueryBuilder}. */
  stream(): never {
    throw notAcrossShards('stream()');
  }

  /** Not available across shards: see {@link createQueryBuilder}. */
  findByCursor(): never {
    throw notAcrossShards('findByCursor()');
  }

  /** Not available: which shard a raw row belongs to is unknown. Use `em.on(shard).map()`. */
  map(): never {
    throw notAcrossShards('map()');
  }

  /** Not available: which shard an entity's data belongs to is unknown. Use `em.on(shard).merge()`. */
  merge(): never {
    throw notAcrossShards('merge()');
  }

  /** Not available yet across shards. Use `em.on(shard).countBy()` per shard. */
  countBy(): never {
    throw notAcrossShards('countBy()');
  }

  /**
   * The entity manager a `transactional()` callback gets: forks of this one's shard forks (made when first used,
   * those this one has at once), with this one's pending entities unless `clear`, as MikroORM forks for a transaction.
   */
  #transactionFork(options: ShardedTransactionOptions): { child: ShardedEntityManager; inherited: readonly object[] } {
    const forkOptions = transactionForkOptions(options);
    const propagate = this.#propagates();
    const makeFork = (shard: ShardId) => forkForTransaction(this.#fork(shard), forkOptions, propagate);
    const child = new ShardedEntityManager(this.#orm, false, makeFork, this.#filters?.copy());
    child.#transactionsDisabled = options.ignoreNestedTransactions === true;
    if (forkOptions.clear) {
      return { child, inherited: [] };
    }
    this.#forks.forEach((_, shard) => child.#fork(shard));
    return { child, inherited: child.#pending.inherit(this.#pending) };
  }

  /** After a `transactional()` callback's success: its entities become this entity manager's, as in MikroORM. */
  #absorb(child: ShardedEntityManager, inherited: readonly object[]): void {
    const moved = child.#pending.takeMovedAway();
    if (this.#propagates()) {
      absorbTransaction(this.#scope, this.#pending, child.#forks, moved, inherited);
    }
  }

  /** Whether transactions are off here: MikroORM's `disableTransactions`, or a callback's with `ignoreNestedTransactions`. */
  #transactionsOff(): boolean {
    return this.#transactionsDisabled || this.#config().get('disableTransactions');
  }

  /** Whether a transaction's entities go back to this entity manager: not to the global one, unless it allows a global context. */
  #propagates(): boolean {
    return !this.#global || this.#config().get('allowGlobalContext');
  }

  /** The configuration MikroORM-wide settings are read from: the first shard's (shards share them). */
  #config() {
    return this.#orm.fleet.config;
  }

  /** Where a filter or its parameters go now: the forks made so far, or on the global entity manager every shard's own. */
  #filterTargets(): Iterable<SqlEntityManager> {
    if (this.#global) {
      return this.#orm.shardIds.map(id => this.#fork(id));
    }
    return this.#forks.values();
  }

  #fork(shard: ShardId, source = 'a chooser'): SqlEntityManager {
    let fork = this.#forks.get(shard);
    if (!fork) {
      if (!this.#orm.fleet.has(shard)) {
        throw this.#orm.fleet.notRegistered(shard, { source });
      }
      fork = this.#makeFork(shard);
      if (this.#filters !== undefined) {
        this.#filters.applyTo(fork);
      }
      this.#forks.set(shard, fork);
    }
    return fork;
  }

  /**
   * A read's options. Inside a chooser (which reads while this entity manager places new entities) a read does not
   * auto-flush unless asked to: nothing is written before every entity of the flush has its shard.
   */
  #readOptions<O extends { flushMode?: unknown }>(options: O): O {
    return this.#pending.insideChooser() && options.flushMode === undefined ? { ...options, flushMode: FlushMode.COMMIT } : options;
  }

  /**
   * The entity manager to act on: this one, or for the global one the request context's, as MikroORM does.
   * Like MikroORM, only context-specific work (`validate`) is refused on the global one; `fork()` and `shardOf()` are not.
   */
  #context(validate = true): ShardedEntityManager {
    if (!this.#global) {
      return this;
    }
    const scoped = transactionEntityManager(this.#orm) ?? ShardedRequestContext.getEntityManager(this.#orm);
    if (scoped) {
      return scoped;
    }
    if (validate && !this.#config().get('allowGlobalContext')) {
      throw ValidationError.cannotUseGlobalContext();
    }
    return this;
  }
}

type ElementOf<T> = T extends readonly (infer Item)[] ? Item : never;
