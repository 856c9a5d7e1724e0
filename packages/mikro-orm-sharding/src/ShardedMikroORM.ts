import { MikroORM, type IDatabaseDriver } from '@mikro-orm/core';
import type { IdChooser, QueryChooser, ShardChooser, ShardId } from './choosers.ts';
import { ShardingError } from './errors.ts';
import { shardConfigs, type ShardedMikroORMOptions } from './options.ts';
import { ShardedEntityManager } from './ShardedEntityManager.ts';
import { ShardedSchema } from './ShardedSchema.ts';
import { ShardedMigrator } from './migrations/ShardedMigrator.ts';
import { settleEach } from './settle.ts';

/** The choosers in force, with the defaults filled in. */
export interface Routing {
  readonly shardChooser: ShardChooser;
  readonly idChooser: IdChooser | undefined;
  readonly queryChooser: QueryChooser | undefined;
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
export class ShardedMikroORM<D extends IDatabaseDriver = IDatabaseDriver> {
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
  static async init<D extends IDatabaseDriver = IDatabaseDriver>(options: ShardedMikroORMOptions<D>): Promise<ShardedMikroORM<D>> {
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
    return new ShardedMikroORM(shards, {
      shardChooser: options.shardChooser,
      idChooser: options.idChooser,
      queryChooser: options.queryChooser,
    });
  }

  /**
   * The global sharded entity manager. Like MikroORM's global `em`, it refuses context-specific work unless
   * `allowGlobalContext` is set: use `orm.em.fork()` or {@link ShardedRequestContext}.
   */
  get em(): ShardedEntityManager {
    this.#em ??= ShardedEntityManager.global(this);
    return this.#em;
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
  get shardIds(): readonly ShardId[] {
    return this.#ids;
  }

  /** The shards' MikroORM instances by shard id. */
  get shards(): ReadonlyMap<ShardId, MikroORM<D>> {
    return this.#shards;
  }

  /** The choosers in force. */
  get routing(): Routing {
    return this.#routing;
  }

  /** One shard's MikroORM instance. Throws `UNKNOWN_SHARD` for an id that is not configured. */
  shard(id: ShardId): MikroORM<D> {
    const orm = this.#shards.get(id);
    if (!orm) {
      throw ShardingError.unknownShard(id, this.#ids, { source: 'orm.shard()' });
    }
    return orm;
  }

  /** Whether every shard's database connection is up. */
  async isConnected(): Promise<boolean> {
    const states = await Promise.all(this.#ids.map(id => this.shard(id).isConnected()));
    return states.every(Boolean);
  }

  /** Closes every shard's connections; a failure on one shard does not keep the others open. */
  async close(force = false): Promise<void> {
    await settleEach('close', this.#ids, id => this.shard(id).close(force));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
