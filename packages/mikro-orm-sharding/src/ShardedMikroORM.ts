import type { IDatabaseDriver, MikroORM } from '@mikro-orm/core';
import type { IdChooserArgs, MaybePromise, QueryChooserArgs, ShardChooserArgs, ShardId } from './choosers.ts';
import { shardConfigs, type EntityList, type ShardedMikroORMOptions, type ShardIdsOf, type ShardMap } from './options.ts';
import { ShardedEntityManager } from './ShardedEntityManager.ts';
import { ShardedSchema } from './ShardedSchema.ts';
import { ShardedMigrator } from './migrations/ShardedMigrator.ts';
import { Fleet } from './fleet/fleet.ts';
import { transactionConfig, withLogTableSkipped, type TransactionConfig } from './transactions/settings.ts';
import { recover, type RecoveryReport } from './transactions/recover.ts';
import { startTwoPhase } from './transactions/two-phase-start.ts';
import type { FleetRunOptions } from './fleet/run-bounded.ts';

/**
 * The choosers in force (`idChooser`/`queryChooser` are `undefined` when defaulted). Declared as methods so that a
 * fleet with typed shard ids is usable wherever any fleet is.
 */
export interface Routing<Id extends string = ShardId> {
  shardChooser(args: ShardChooserArgs<object, Id>): MaybePromise<Id>;
  idChooser?(args: IdChooserArgs<object, Id>): MaybePromise<readonly Id[]>;
  queryChooser?(args: QueryChooserArgs<object, Id>): MaybePromise<readonly Id[]>;
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
  readonly #transactions: TransactionConfig;
  #em: ShardedEntityManager | undefined;
  #schema: ShardedSchema | undefined;
  #migrator: ShardedMigrator | undefined;

  /** Use {@link ShardedMikroORM.init}. */
  private constructor(fleet: Fleet<D>, routing: Routing, transactions: TransactionConfig) {
    this.#fleet = fleet;
    this.#routing = routing;
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
    const fleet = await Fleet.open<D>(configs, options.connect ?? true);
    // The choosers were typed against the fleet's own shard ids and entities; the routing code passes it exactly those.
    const routing = { shardChooser: options.shardChooser, idChooser: options.idChooser, queryChooser: options.queryChooser } as Routing;
    const orm = new ShardedMikroORM(fleet, routing, transactions);
    if (transactions.twoPhase) {
      await startTwoPhase(orm, options.connect ?? true).catch(async (error: unknown) => {
        await fleet.close(true).catch(() => undefined);
        throw error;
      });
    }
    return orm as ShardedMikroORM<D, ShardIdsOf<Shards>>;
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

  /** The shard ids, in the order of the `shards` option. */
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

  /** One shard's MikroORM instance. Throws `UNKNOWN_SHARD` for an id that is not configured. */
  shard(id: Id): MikroORM<D> {
    return this.#fleet.get(id);
  }

  /** Whether every shard's database connection is up. */
  async isConnected(): Promise<boolean> {
    const states = await Promise.all([...this.#fleet.open.values()].map(orm => orm.isConnected()));
    return states.every(Boolean);
  }

  /** Closes every shard's connections; a failure on one shard does not keep the others open. */
  async close(force = false): Promise<void> {
    await this.#fleet.close(force);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
