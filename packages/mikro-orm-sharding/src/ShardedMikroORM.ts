import type { IDatabaseDriver, MikroORM } from '@mikro-orm/core';
import type { IdChooserArgs, MaybePromise, QueryChooserArgs, ShardChooserArgs, ShardId } from './choosers.ts';
import {
  shardConfig,
  shardConfigs,
  sharedOptionsOf,
  type ShardOptions,
  type EntityList,
  type ShardedMikroORMOptions,
  type ShardIdsOf,
  type ShardMap,
} from './options.ts';
import { ShardedEntityManager } from './ShardedEntityManager.ts';
import { ShardedSchema } from './ShardedSchema.ts';
import { ShardedMigrator } from './migrations/ShardedMigrator.ts';
import { ShardingError } from './errors/errors.ts';
import { Fleet, type OnShardOpen } from './fleet/fleet.ts';
import { breakerSettings, FleetHealth } from './fleet/health.ts';
import { withHealthGates, withPoolGate } from './fleet/pool-gate.ts';
import { registrySettings } from './fleet/registry-settings.ts';
import { forgetShardKnowledge } from './fleet/fleet-metadata.ts';
import { withConnectionDefaults } from './fleet/connection-defaults.ts';
import { withShardLoggers } from './fleet/shard-logging.ts';
import type { ShardHealth } from './fleet/circuit-breaker.ts';
import { checkOnShardError, type FaultPolicy } from './read/partial.ts';
import { ShardKeys } from './routing/shard-by.ts';
import { resolveBinds } from './routing/binds.ts';
import { broadcastNames } from './routing/broadcast.ts';
import { guardReadOnlyShards } from './routing/read-only.ts';
import { witnessWrites } from './routing/read-your-writes.ts';
import { transactionConfig, withLogTableSkipped, type TransactionConfig } from './transactions/settings.ts';
import { recover, type RecoveryReport } from './transactions/recover.ts';
import { startTwoPhase } from './transactions/two-phase-start.ts';
import type { FleetRunOptions } from './fleet/run-bounded.ts';

/**
 * The choosers and binds in force (`idChooser`/`queryChooser` are `undefined` when defaulted, `shardChooser` when
 * every entity is bound). Declared as methods so that a fleet with typed shard ids is usable wherever any fleet is.
 */
export interface Routing<Id extends string = ShardId> {
  shardChooser?(args: ShardChooserArgs<object, Id>): MaybePromise<Id | undefined>;
  idChooser?(args: IdChooserArgs<object, Id>): MaybePromise<readonly Id[] | undefined>;
  queryChooser?(args: QueryChooserArgs<object, Id>): MaybePromise<readonly Id[] | undefined>;
  /** The binds in force, by entity class name, and the default bind; undefined without `binds`/`defaultBind`. */
  readonly binds?: { readonly byName: Readonly<Record<string, Id>>; readonly defaultBind: Id | undefined };
  /** Whether an entity manager reads a replicated shard it has written to from the primary (`readYourWrites`). */
  readonly readYourWrites: boolean;
}

/**
 * One MikroORM instance per shard, behind one entity manager that routes writes, primary-key lookups and queries.
 * Each shard's MikroORM gets the shared options merged with the shard's own, and `contextName` = its shard id.
 *
 * @example
 * ```ts
 * await using orm = await ShardedMikroORM.init({ driver: SqliteDriver, entities: [Author], shards, shardChooser });
 * await orm.schema.create();
 * const em = orm.em.fork();
 * ```
 */
export class ShardedMikroORM<D extends IDatabaseDriver = IDatabaseDriver, Id extends string = ShardId> {
  readonly #fleet: Fleet<D>;
  readonly #routing: Routing;
  readonly #faults: FaultPolicy;
  #shardKeys: ShardKeys = ShardKeys.none;
  readonly #transactions: TransactionConfig;
  #em: ShardedEntityManager | undefined;
  #schema: ShardedSchema | undefined;
  #migrator: ShardedMigrator | undefined;
  #shared: object = {};

  /** Use {@link ShardedMikroORM.init}. */
  private constructor(fleet: Fleet<D>, routing: Routing, faults: FaultPolicy, transactions: TransactionConfig) {
    this.#fleet = fleet;
    this.#routing = routing;
    this.#faults = faults;
    this.#transactions = transactions;
  }

  /**
   * Validates the options, then initialises every shard's MikroORM (in parallel). If any shard fails, the others
   * are closed again and a `ShardingError` (`SHARD_INIT_FAILED`) naming the shard is thrown.
   */
  static async init<D extends IDatabaseDriver = IDatabaseDriver, Shards extends object = ShardMap<D>, Entities extends EntityList = EntityList>(
    options: ShardedMikroORMOptions<D, Shards, Entities>,
  ): Promise<ShardedMikroORM<D, ShardIdsOf<Shards>>> {
    const configs = shardConfigs(options);
    const transactions = transactionConfig(options.transactionMode, options.twoPhaseCommit, [...configs.keys()]);
    withLogTableSkipped(configs, transactions);
    const faults = {
      onShardError: checkOnShardError(options.onShardError, 'init()') ?? 'fail',
      health: new FleetHealth(breakerSettings(options.circuitBreaker)),
    };
    const registry = registrySettings(options);
    const shared = sharedOptionsOf<D>(options as ShardedMikroORMOptions<D, object, EntityList>);
    const fleet = await Fleet.open<D>(
      withHealthGates<D>(configs, faults.health),
      options.connect ?? registry.maxOpenShards === Infinity,
      registry,
      // Never connected: only discovers the shared entities when there is no shard yet (MikroORM wants a database name).
      withShardLoggers(
        withConnectionDefaults<D>({ ...shared, dbName: shared.dbName ?? 'mikro-orm-sharding', contextName: 'mikro-orm-sharding:fleet' }),
        'fleet',
      ),
    );
    try {
      const broadcast = broadcastNames(options.shardBy);
      const binds = resolveBinds(fleet, options, options.shardChooser !== undefined || options.shardBy !== undefined, broadcast);
      guardReadOnlyShards(fleet);
      // Only a fleet with replicas pays for it: reads then look up what their entity manager wrote.
      const readYourWrites = (options.readYourWrites ?? true) && witnessWrites(fleet);
      // The choosers were typed against the fleet's own shard ids and entities; the routing code passes it exactly those.
      const routing = {
        shardChooser: options.shardChooser,
        idChooser: options.idChooser,
        queryChooser: options.queryChooser,
        binds,
        readYourWrites,
      } as Routing;
      const orm = new ShardedMikroORM(fleet, routing, faults, transactions);
      orm.#shared = shared;
      // Declarations are checked against the entities' metadata, which exists once the shards are initialised.
      orm.#shardKeys = ShardKeys.resolve(orm, options);
      if (transactions.twoPhase) {
        await startTwoPhase(orm, options.connect ?? true);
      }
      return orm as ShardedMikroORM<D, ShardIdsOf<Shards>>;
    } catch (error) {
      await fleet.close(true).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Registers a shard at runtime: `options` are its own options over the shared ones (entities included), or a
   * connection URL, validated as `init()` validates `shards`. It opens (connects) on first use. Throws
   * `DUPLICATE_SHARD` for an id that is registered, and `SHARD_INIT_FAILED` when its entities cannot be discovered;
   * nothing is registered then. See docs/registry.md.
   */
  async addShard(id: string, options: ShardOptions<D> | string = {}): Promise<void> {
    await this.registerShard(id, options);
  }

  /**
   * @internal `addShard()` with the shard's own open hook (run once at its first connection, before `onShardOpen`):
   * what a strategy that makes shards on demand (`tenant()`) prepares them with.
   */
  async registerShard(id: string, options: ShardOptions<D> | string, onOpen?: OnShardOpen): Promise<void> {
    const config = shardConfig<D>(id, options, this.#shared);
    if (this.#fleet.has(id)) {
      throw ShardingError.duplicateShard(id);
    }
    await this.#fleet.add(id, withPoolGate<D>(config, this.#faults.health.breaker(id)), onOpen);
    forgetShardKnowledge(this as ShardedMikroORM);
  }

  /**
   * Unregisters a shard: from now on using it throws `SHARD_REMOVED`; waits for its queries, transactions and
   * leases in flight, then closes it. Throws `UNKNOWN_SHARD` for an id that is not registered. Its rows stay in its
   * database.
   */
  async removeShard(id: Id): Promise<void> {
    await this.#fleet.remove(id);
    this.#faults.health.forget(id);
    forgetShardKnowledge(this as ShardedMikroORM);
  }

  /**
   * The global sharded entity manager. Like MikroORM's global `em`, it refuses context-specific work unless
   * `allowGlobalContext` is set: use `orm.em.fork()` or {@link ShardedRequestContext}.
   */
  get em(): ShardedEntityManager<Id> {
    this.#em ??= ShardedEntityManager.global(this);
    return this.#em as ShardedEntityManager<Id>;
  }

  /** Schema management on every shard: `create()`, `update()`, `drop()`, `refresh()`, `clear()`, `ensureDatabase()`. */
  get schema(): ShardedSchema {
    this.#schema ??= new ShardedSchema(this);
    return this.#schema;
  }

  /**
   * MikroORM's migrator on every shard: `create()`, `up()`, `down()`, `pending()`, `executed()`, `status()`, with
   * bounded concurrency and a per-shard report. Needs `extensions: [Migrator]` from `@mikro-orm/migrations`.
   */
  get migrator(): ShardedMigrator {
    this.#migrator ??= new ShardedMigrator(this);
    return this.#migrator;
  }

  /** The registered shard ids: those of the `shards` option, in order, then those added (`addShard()`), live. */
  get shardIds(): readonly Id[] {
    return this.#fleet.ids as readonly Id[];
  }

  /** The shards' MikroORM instances (those open now) by shard id. */
  get shards(): ReadonlyMap<Id, MikroORM<D>> {
    return this.#fleet.open as ReadonlyMap<Id, MikroORM<D>>;
  }

  /** @internal The shard registry: ids, lookup, opening and closing. */
  get fleet(): Fleet<D> {
    return this.#fleet;
  }

  /** @internal The transaction mode and two-phase commit settings of `init()`. */
  get transactionConfig(): TransactionConfig {
    return this.#transactions;
  }

  /**
   * Resolves every transaction this fleet's two-phase commit left prepared (after a crash, or a shard that failed
   * to commit): commits those whose commit decision is in the coordinator log, rolls back the others. Safe to run
   * from several processes at once; `init()` runs it. Without `twoPhaseCommit` there is nothing to do.
   */
  recover(options: Pick<FleetRunOptions, 'concurrency'> = {}): Promise<RecoveryReport> {
    return recover(this as ShardedMikroORM, options);
  }

  /** The choosers in force. */
  get routing(): Routing<Id> {
    return this.#routing as Routing<Id>;
  }

  /** @internal What reads do when shards cannot be reached, and the shards' circuit breakers. */
  get faults(): FaultPolicy {
    return this.#faults;
  }

  /**
   * Every shard's availability as its connections saw it: circuit breaker state (`closed`, `open`, `half-open`),
   * failure counts and the last connection error. Plain data (JSON-friendly), for a health endpoint or metrics.
   */
  health(): Readonly<Record<Id, ShardHealth>> {
    return Object.freeze(Object.fromEntries(this.#fleet.ids.map(id => [id, this.#faults.health.of(id)]))) as Record<Id, ShardHealth>;
  }

  /** One shard's availability (see {@link health}). Throws `UNKNOWN_SHARD` for an id that is not configured. */
  shardState(id: Id): ShardHealth {
    if (!this.#fleet.has(id)) {
      throw ShardingError.unknownShard(id, this.#fleet.ids, { source: 'orm.shardState()' });
    }
    return this.#faults.health.of(id);
  }

  /** @internal The `shardBy` declarations, resolved against the entities. */
  get shardKeys(): ShardKeys {
    return this.#shardKeys;
  }

  /**
   * One shard's MikroORM instance, opened now if it is not open (it connects on its first query, as MikroORM does).
   * With `maxOpenShards` it may be closed once idle: use it right away, or hold it with {@link leaseShard}. Throws
   * `UNKNOWN_SHARD` for an id that is not registered, `SHARD_REMOVED` for a removed one.
   */
  shard(id: Id): MikroORM<D> {
    return this.#fleet.get(id);
  }

  /**
   * A shard's MikroORM, held open until `release()` (never closed for `maxOpenShards` meanwhile); supports
   * `using`. For work spanning several calls on one shard's own MikroORM.
   */
  async leaseShard(id: Id): Promise<{ readonly orm: MikroORM<D>; release(): void; [Symbol.dispose](): void }> {
    const lease = await this.#fleet.lease(id, 'orm.leaseShard()');
    return { ...lease, [Symbol.dispose]: lease.release };
  }

  /** Whether some shard is open and every open shard's database connection is up. */
  async isConnected(): Promise<boolean> {
    const states = await Promise.all([...this.#fleet.open.values()].map(orm => orm.isConnected()));
    return states.length > 0 && states.every(Boolean);
  }

  /** Closes every open shard's connections; a failure on one shard does not keep the others open. */
  async close(force = false): Promise<void> {
    await this.#fleet.close(force);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
