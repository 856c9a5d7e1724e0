import { AsyncLocalStorage } from 'node:async_hooks';
import {
  Configuration,
  MikroORM,
  type IDatabaseDriver,
  type MetadataStorage,
  type Options,
  helper,
  QueryHelper,
  RequestContext,
  TransactionManager,
  type AbortQueryOptions,
  type Dictionary,
  type EntityData,
  type EntityManager,
  type EntityMetadata,
  type EntityName,
  type FilterQuery,
  type LogContext,
  type NamingStrategy,
  type QueryOrderMap,
} from '@mikro-orm/core';
import type { DatabaseTable, ForeignKey, SchemaHelper, SqlEntityManager } from '@mikro-orm/sql';

/**
 * Every MikroORM internal this library relies on, and nothing else. MikroORM marks these `@internal` or `protected`
 * (or they are undocumented properties), so a MikroORM release may change them without notice:
 * test/mikro-internals.test.ts pins the behaviour of each one by name, so such a change fails there first.
 * Everything else in this library uses MikroORM's public API.
 */

/** The part of MikroORM's per-entity helper (`entity.__helper`) the library reads. */
export interface EntityHelper {
  /** The entity's metadata (`__meta`). */
  readonly __meta: EntityMetadata;
  /** The entity manager that loaded or persisted the entity; undefined while it is new (`__em`). */
  readonly __em?: EntityManager;
  hasPrimaryKey(): boolean;
  getPrimaryKey(): unknown;
  getSerializedPrimaryKey(): string;
}

/** The helper of an entity or reference, undefined for an object that is no entity (`__helper`). */
export function helperOf(entity: object): EntityHelper | undefined {
  return (entity as { __helper?: EntityHelper }).__helper;
}

/** The helper of a known entity (`helper()`, `@internal`). */
export function entityHelper(entity: object): EntityHelper {
  return helper(entity) as unknown as EntityHelper;
}

/** An entity's metadata (`__helper.__meta`). */
export function metaOf(entity: object): EntityMetadata {
  return (helper(entity) as unknown as EntityHelper).__meta;
}

/** The entity manager that manages an entity (`__helper.__em`); undefined for a new entity or a non-entity. */
export function managerOf(entity: object): EntityManager | undefined {
  return helperOf(entity)?.__em;
}

/**
 * What a managed entity held when it was loaded or last flushed, by property (a to-one relation as its primary key);
 * undefined for a new entity (`__helper.__originalEntityData`).
 */
export function originalDataOf(entity: object): Dictionary | undefined {
  return (helperOf(entity) as { __originalEntityData?: Dictionary } | undefined)?.__originalEntityData;
}

/**
 * Puts back what a managed entity was loaded with (see {@link originalDataOf}): after a flush wrote its changes in a
 * transaction that then rolled back, so that the next flush writes them again (`__originalEntityData`).
 */
export function restoreOriginalData(entity: object, data: Dictionary | undefined): void {
  (helper(entity) as unknown as { __originalEntityData?: Dictionary }).__originalEntityData = data;
}

/** Every entity an entity manager's identity map holds (`IdentityMap` is `@internal`). */
export function managedEntities(em: EntityManager): Iterable<object> {
  return em.getUnitOfWork(false).getIdentityMap() as Iterable<object>;
}

/**
 * The auto-flush `em.find` runs before it queries: a flush when something of this entity type is pending, or always
 * with `flushMode: 'always'` (`em.tryFlush`, `@internal`).
 */
export function autoFlush(fork: SqlEntityManager, entityName: EntityName<object>, flushMode: unknown): Promise<void> {
  return fork.tryFlush(entityName, { flushMode: flushMode as never });
}

/** The condition after the filters that apply to it; MikroORM returns `where` itself when none does (`em.applyFilters`, `@internal`). */
export function applyReadFilters(fork: SqlEntityManager, entityName: EntityName<object>, where: unknown, filters: unknown): Promise<unknown> {
  return fork.applyFilters(entityName, where as FilterQuery<object>, filters as never, 'read');
}

/**
 * A raw row of `select *` made a managed entity exactly as `em.find` makes one: mapped from columns to properties
 * (`driver.mapResult`), then merged into the fork's identity map (`EntityFactory.create` with its `merge`, `refresh`
 * and `convertCustomTypes` options, which `em.find` passes).
 */
export function entityFromRow<T extends object>(
  fork: SqlEntityManager,
  entityName: EntityName<T>,
  meta: EntityMetadata<T>,
  row: Dictionary,
  refresh: boolean | undefined,
): T {
  const data = fork.getDriver().mapResult(row as EntityData<T>, meta) as EntityData<T>;
  return fork.getEntityFactory().create(entityName, data, { merge: true, refresh, convertCustomTypes: true }) as T;
}

/** Fires the `onLoad` hooks of entities made since the last call, as `em.find` does at its end (`uow.dispatchOnLoadEvent`, `@internal`). */
export function dispatchOnLoad(fork: SqlEntityManager): Promise<void> {
  return fork.getUnitOfWork().dispatchOnLoadEvent();
}

/** A query's `orderBy` followed by the entity's default order, as `em.find` merges them (`QueryHelper`, `@internal`). */
export function mergeOrderBy(given: unknown, entityDefault: unknown): QueryOrderMap<object>[] {
  return QueryHelper.mergeOrderBy(given as QueryOrderMap<object>, entityDefault as QueryOrderMap<object>);
}

/** The abort signal an entity manager was forked with (`em.fork({ signal })`), which its queries default to (`em.getAbortOptions`, `protected`). */
export function abortDefaultsOf(em: EntityManager): AbortQueryOptions | undefined {
  return (em as unknown as { getAbortOptions(): AbortQueryOptions | undefined }).getAbortOptions();
}

/**
 * The driver's own client behind a MikroORM connection: a better-sqlite3 `Database`, a `pg` `Pool`, ... The method
 * is public, but what it returns is each driver's business; the fast path checks the shape it uses and otherwise
 * runs queries through MikroORM.
 */
export function nativeClientOf(connection: object): Promise<unknown> {
  return (connection as { getNativeClient(): Promise<unknown> }).getNativeClient();
}

/**
 * Runs `run` as MikroORM's connection runs a query: timed, then handed to the configured logger (with the
 * connection's label, `took`, `results`, `level: 'error'` on failure) and to the slow-query logger when it took
 * `slowQueryThreshold` ms or more (`Connection.executeQuery`, `protected`). Errors pass through unconverted.
 */
export function executeLogged<T>(connection: object, query: string, context: LogContext, run: () => T | Promise<T>): Promise<T> {
  return (connection as unknown as { executeQuery(query: string, cb: () => Promise<T>, context: LogContext): Promise<T> }).executeQuery(
    query,
    async () => run(),
    context,
  );
}

const defaultOnQuery = new Configuration({}, false).get('onQuery');

/** Whether `onQuery` is still MikroORM's default (which returns the SQL unchanged); its default is not exported. */
export function isDefaultOnQuery(config: Configuration): boolean {
  return config.get('onQuery') === defaultOnQuery;
}

/**
 * `driverOptions` with a hook MikroORM's PostgreSQL connection calls with each `pg` Pool it creates, before any
 * connection is made (`onPoolCreated`, read and removed by `PostgreSqlConnection.createKyselyDialect`, undocumented).
 * A hook already there runs first.
 */
export function withPoolCreatedHook<T extends object>(driverOptions: T, hook: (pool: object) => void): T {
  const previous = (driverOptions as { onPoolCreated?: unknown }).onPoolCreated;
  const onPoolCreated = (pool: object) => {
    const before = typeof previous === 'function' ? (previous as (pool: object) => unknown)(pool) : undefined;
    hook(pool);
    return before;
  };
  return { ...driverOptions, onPoolCreated };
}

/** The parts of MikroORM's `TransactionManager` that `em.transactional()` uses around the callback (both `private`). */
interface TransactionManagerInternals {
  mergeEntitiesToParent(fork: EntityManager, parent: EntityManager): void;
  registerDeletionHandler(fork: EntityManager, parent: EntityManager): void;
}

function transactionManager(em: EntityManager): TransactionManagerInternals {
  return new TransactionManager(em) as unknown as TransactionManagerInternals;
}

/**
 * What a transaction's fork loaded, created and changed becomes the entity manager's it was forked from, as after
 * MikroORM's `em.transactional()` commits (`TransactionManager.mergeEntitiesToParent`, `private`).
 */
export function mergeIntoParent(fork: EntityManager, parent: EntityManager): void {
  transactionManager(parent).mergeEntitiesToParent(fork, parent);
}

/**
 * Entities a transaction's fork deletes leave the parent's identity map when the fork flushes the deletion, as in
 * MikroORM's `em.transactional()` (`TransactionManager.registerDeletionHandler`, `private`).
 */
export function forgetDeletionsInParent(fork: EntityManager, parent: EntityManager): void {
  transactionManager(parent).registerDeletionHandler(fork, parent);
}

/**
 * An entity's row as MikroORM's unit of work writes it on insert: database values (custom types converted) by
 * property, to-one relations as their keys, no collections (`EntityComparator.prepareEntity`, reached through
 * `config.getComparator`). MikroORM leaves the version property out of this snapshot; it is added here, as it is.
 * Written with `em.insertMany(entityName, rows, { convertCustomTypes: false })`.
 */
export function rowOf(em: EntityManager, entity: object): Dictionary {
  const row = em.config.getComparator(em.getMetadata()).prepareEntity(entity) as Dictionary;
  const version = metaOf(entity).versionProperty;
  if (version !== undefined) {
    row[version] = (entity as Dictionary)[version];
  }
  return row;
}

/**
 * Takes an entity out of an entity manager's unit of work (identity map, persist, remove and orphan-removal stacks),
 * leaving the entity itself as it is: its original data, so its pending changes, and its relations. MikroORM's
 * `uow.unsetIdentity()` would also unset the relations other managed entities hold to it (`IdentityMap` is `@internal`).
 * Resolves to whether the unit of work held it.
 */
export function releaseEntity(em: EntityManager, entity: object): boolean {
  const uow = em.getUnitOfWork(false);
  const map = uow.getIdentityMap();
  const held = map.getByEntity(entity) === entity;
  if (held) {
    map.delete(entity);
  }
  const stacked = uow.getPersistStack().delete(entity);
  uow.getRemoveStack().delete(entity);
  uow.getOrphanRemoveStack().delete(entity);
  return held || stacked;
}

/**
 * Makes an entity managed by an entity manager, keeping its original data (so its pending changes stay pending, to
 * be flushed there): its identity map holds it, and `__em` names it, or `manager` (the entity manager a transaction's
 * fork was forked from, whose entity it was) (`uow.register`, `@internal`; `__em` is undocumented).
 */
export function adoptEntity(em: EntityManager, entity: object, manager: EntityManager = em): void {
  (helper(entity) as unknown as { __em: EntityManager }).__em = manager;
  em.getUnitOfWork(false).register(entity);
}

/**
 * MikroORM's reading of one introspected table as entity metadata: property names and types, defaults, unique
 * columns, foreign keys as to-one relations. It is the first step of MikroORM's entity generator, which lives in
 * `@mikro-orm/sql` (`DatabaseTable.getEntityDeclaration`; the class is `@internal`). Relations to tables that are
 * not mapped must be dropped first ({@link keepForeignKeys}), or they name entities that do not exist.
 */
export function entityDeclarationOf(table: DatabaseTable, naming: NamingStrategy, schemaHelper: SchemaHelper): EntityMetadata {
  return table.getEntityDeclaration(naming, schemaHelper, 'never');
}

/** Keeps only the foreign keys of an introspected table that `keep` accepts (`DatabaseTable.setForeignKeys`, `@internal`). */
export function keepForeignKeys(table: DatabaseTable, keep: (fk: ForeignKey) => boolean): void {
  table.setForeignKeys(Object.fromEntries(Object.entries(table.getForeignKeys()).filter(([, fk]) => keep(fk))));
}

/** What the registry hears from one shard's connections (see {@link watchConnections}). */
export interface ConnectionWatch {
  /** Runs once per connect, after MikroORM connected and before any query waiting for the connection goes on. */
  connected(): Promise<void> | void;
  /** A query or a top-level transaction started (+1) or ended (-1) on the shard. */
  busy(delta: 1 | -1): void;
  /** A promise to wait for before a query or transaction starts (a close in progress); undefined to go on. */
  gate(): Promise<void> | undefined;
}

type WatchedConnection = {
  connect(options?: unknown): Promise<void>;
  close(force?: boolean): Promise<void>;
  execute(...args: unknown[]): Promise<unknown>;
  begin(options?: { ctx?: unknown }): Promise<object>;
  commit(ctx: object, ...rest: unknown[]): Promise<void>;
  rollback(ctx: object, ...rest: unknown[]): Promise<void>;
  options: Record<string, unknown>;
};

/**
 * Wraps the primary and replica connections of one MikroORM instance (instance methods of MikroORM's
 * `AbstractSqlConnection`: `connect`, `close`, `execute`, `begin`, `commit`, `rollback`, and the protected
 * `options`) so that the shard registry sees every query and transaction, whoever runs it (the sharded entity
 * manager, `em.on()`, `orm.shard(id)`, the schema tools): a shard with one in flight is never closed. Concurrent
 * connects share one (MikroORM's `ensureConnection()` would open two clients), and `close()` keeps the connection's
 * own options (MikroORM's clears them, so a replica would reconnect to the primary).
 */
export function watchConnections(orm: { readonly driver: object }, watch: ConnectionWatch): void {
  const driver = orm.driver as { connection: WatchedConnection; replicas?: WatchedConnection[] };
  watchConnection(driver.connection, watch, false);
  for (const replica of driver.replicas ?? []) {
    watchConnection(replica, watch, true);
  }
}

/** The watched connections, and how to mark work on them busy. */
const watched = new WeakMap<object, <T>(run: () => Promise<T>) => Promise<T>>();

/**
 * Runs `run` with the connection's shard marked busy (never closed meanwhile), after any close in progress: for
 * work that reaches the driver's own client (the prepared-statement fast path) rather than `execute()`.
 */
export function whileBusy<T>(connection: object, run: () => Promise<T>): Promise<T> {
  const busy = watched.get(connection);
  return busy ? busy(run) : run();
}

function watchConnection(connection: WatchedConnection, watch: ConnectionWatch, replica: boolean): void {
  const { connect, close, execute, begin, commit, rollback } = connection;
  const live = new WeakSet<object>();
  let connecting: Promise<void> | undefined;
  const ended = (ctx: object) => {
    if (live.delete(ctx)) {
      watch.busy(-1);
    }
  };
  connection.connect = function (options?: unknown) {
    if (preparing.getStore()) {
      // The open hook's own tools reconnecting (schema.ensureDatabase() does): not a new open.
      return connect.call(this, options);
    }
    // MikroORM's own `onConnect()` (ensureDatabase, ensureIndexes) queries inside `connect()`, as the hook may.
    connecting ??= preparing
      .run(true, async () => {
        await connect.call(this, options);
        await watch.connected();
      })
      .finally(() => {
        connecting = undefined;
      });
    return connecting;
  };
  // A replica's own options (its `clientUrl`) are only in `options`; the primary reads the configuration, which
  // MikroORM's schema tools change on purpose (`dbName` while creating a database).
  connection.close = !replica
    ? close
    : async function (this: WatchedConnection, force?: boolean) {
        const own = { ...this.options };
        try {
          await close.call(this, force);
        } finally {
          Object.assign(this.options, own);
        }
      };
  const ready = async () => {
    const gate = watch.gate();
    if (gate) await gate;
    if (connecting && !preparing.getStore()) await connecting;
  };
  // Most queries have nothing to wait for: they skip `ready()`'s promise (this runs once per query).
  const mustWait = () => watch.gate() !== undefined || (connecting !== undefined && !preparing.getStore());
  const busy = async <T>(run: () => Promise<T>): Promise<T> => {
    // Busy at once, before anything is awaited: the shard must not be picked for closing from here on.
    watch.busy(1);
    try {
      if (mustWait()) await ready();
      return await run();
    } finally {
      watch.busy(-1);
    }
  };
  watched.set(connection, busy);
  connection.execute = function (...args: unknown[]) {
    return busy(() => execute.apply(this, args));
  };
  connection.begin = async function (options?: { ctx?: unknown }) {
    if (options?.ctx !== undefined) {
      return begin.call(this, options);
    }
    watch.busy(1);
    try {
      await ready();
      const ctx = await begin.call(this, options);
      live.add(ctx);
      return ctx;
    } catch (error) {
      watch.busy(-1);
      throw error;
    }
  };
  connection.commit = async function (ctx: object, ...rest: unknown[]) {
    try {
      return await commit.call(this, ctx, ...rest);
    } finally {
      ended(ctx);
    }
  };
  connection.rollback = async function (ctx: object, ...rest: unknown[]) {
    try {
      return await rollback.call(this, ctx, ...rest);
    } finally {
      ended(ctx);
    }
  };
}

/** Set while a shard connects, so that the queries of the connect itself do not wait for it. */
const preparing = new AsyncLocalStorage<true>();

/**
 * A MikroORM instance built synchronously on metadata another instance discovered (same driver, entities and
 * discovery options): MikroORM's constructor discovers nothing (`entities: []`), and its public `afterDiscovered`
 * hook fills the empty storage with the discovered entities' metadata, which the instances then share (as they
 * already share the entity classes). `extensions` are the ones the first instance's `MikroORM.init()` loaded.
 */
export function ormWithMetadata<D extends IDatabaseDriver>(options: Options<D>, metadata: MetadataStorage, extensions: Options['extensions']): MikroORM<D> {
  const discovery = {
    ...options.discovery,
    warnWhenNoEntities: false,
    skipSyncDiscovery: false,
    afterDiscovered: (storage: MetadataStorage) => {
      for (const meta of metadata) {
        storage.set(meta.class, meta);
      }
    },
  };
  return new MikroORM<D>({ ...options, entities: [], entitiesTs: [], extensions, discovery } as Options<D>);
}

/**
 * Runs `next` in a new MikroORM `RequestContext` over `map` (its entity managers by `contextName`). The public
 * `RequestContext.create` forks every entity manager it is given up front; the library's map makes a shard's fork
 * when the request first asks for it, so it needs the context made over a map of its own, which takes the private
 * `RequestContext.storage` (the `AsyncLocalStorage` that `RequestContext.getEntityManager(name)` reads).
 */
export function runWithContextMap<T>(map: Map<string, EntityManager>, next: () => T): T {
  const storage = (RequestContext as unknown as { readonly storage: AsyncLocalStorage<RequestContext> }).storage;
  return storage.run(new RequestContext(map), next);
}
