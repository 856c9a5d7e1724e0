import { MikroORM, type IDatabaseDriver } from '@mikro-orm/core';
import type { IdChooserArgs, MaybePromise, QueryChooserArgs, ShardChooserArgs, ShardId } from './choosers.ts';
import { ShardingError } from './errors/errors.ts';
import { shardConfigs, type EntityList, type ShardedMikroORMOptions, type ShardIdsOf, type ShardMap } from './options.ts';
import { ShardedEntityManager } from './ShardedEntityManager.ts';
import { ShardedSchema } from './ShardedSchema.ts';
import { ShardedMigrator } from './migrations/ShardedMigrator.ts';
import { settleEach } from './fleet/settle.ts';

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
  readonly #shards: ReadonlyMap<ShardId, MikroORM<D>>;
  readonly #ids: readonly ShardId[];
  readonly #routing: Routing;
  #em: ShardedEntityManager | undefined;
  #schema: ShardedSchema | undefined;
  #migrator: ShardedMigrator | undefined;

  /** Use {@link ShardedMikroORM.init}. */
  private constructor(shards: ReadonlyMap<ShardId, MikroORM<D>>, routing: Routing) {
    this.#shards = shards;
    this.#ids = Object.freeze([...shards.keys()]);
    this.#routing = routing;
  }

  /**
   * Validates the options, then initialises every shard's MikroORM (in parallel). If any shard fails, the others
   * are closed again and a {@link ShardingError} naming the shard is thrown.
   */
  static async init<D extends IDatabaseDriver = IDatabaseDriver, Shards extends object = ShardMap<D>, Entities extends EntityList = EntityList>(
    options: ShardedMikroORMOptions<D, Shards, Entities>,
  ): Promise<ShardedMikroORM<D, ShardIdsOf<Shards>>> {
    const configs = shardConfigs(options);
    const ids = [...configs.keys()];
    const connect = options.connect ?? true;
    const results = await Promise.allSettled(
      ids.map(async id => {
        const orm = await MikroORM.init<D>(configs.get(id)!);
        if (connect) {
          await orm.connect().catch(async (error: unknown) => {
            await orm.close(true);
            throw error;
          });
        }
        return orm;
      }),
    );
    const failed = results.findIndex(result => result.status === 'rejected');
    if (failed >= 0) {
      await Promise.allSettled(results.map(result => (result.status === 'fulfilled' ? result.value.close(true) : undefined)));
      throw ShardingError.shardInitFailed(ids[failed]!, (results[failed] as PromiseRejectedResult).reason);
    }
    const shards = new Map(ids.map((id, i) => [id, (results[i] as PromiseFulfilledResult<MikroORM<D>>).value]));
    // The choosers were typed against the fleet's own shard ids and entities; the routing code passes it exactly those.
    const routing = { shardChooser: options.shardChooser, idChooser: options.idChooser, queryChooser: options.queryChooser } as Routing;
    return new ShardedMikroORM(shards, routing);
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
    return this.#ids as readonly Id[];
  }

  /** The shards' MikroORM instances by shard id. */
  get shards(): ReadonlyMap<Id, MikroORM<D>> {
    return this.#shards as ReadonlyMap<Id, MikroORM<D>>;
  }

  /** The choosers in force. */
  get routing(): Routing<Id> {
    return this.#routing as Routing<Id>;
  }

  /** One shard's MikroORM instance. Throws `UNKNOWN_SHARD` for an id that is not configured. */
  shard(id: Id): MikroORM<D> {
    const orm = this.#shards.get(id);
    if (!orm) {
      throw ShardingError.unknownShard(id, this.#ids, { source: 'orm.shard()' });
    }
    return orm;
  }

  /** Whether every shard's database connection is up. */
  async isConnected(): Promise<boolean> {
    const states = await Promise.all([...this.#shards.values()].map(orm => orm.isConnected()));
    return states.every(Boolean);
  }

  /** Closes every shard's connections; a failure on one shard does not keep the others open. */
  async close(force = false): Promise<void> {
    await settleEach('close', this.#ids, id => this.#shards.get(id)!.close(force));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
