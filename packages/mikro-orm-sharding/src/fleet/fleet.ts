import { MikroORM, type Configuration, type IDatabaseDriver } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import type { ShardOptions } from '../options.ts';
import { settleEach } from './settle.ts';

/**
 * The one place that knows which shards exist and holds their MikroORM instances: nothing else keeps a shard map.
 * A shard is known by its id; the MikroORM behind an id is found through {@link Fleet.get}, and an entity's shard
 * through the `Configuration` of the entity manager that loaded it ({@link Fleet.shardOfConfig}).
 *
 * @internal
 */
export class Fleet<D extends IDatabaseDriver = IDatabaseDriver> {
  readonly #options: Map<ShardId, ShardOptions<D>>;
  readonly #open = new Map<ShardId, MikroORM<D>>();
  readonly #byConfig = new WeakMap<Configuration, ShardId>();
  #ids: readonly ShardId[];

  private constructor(options: Map<ShardId, ShardOptions<D>>) {
    this.#options = options;
    this.#ids = Object.freeze([...options.keys()]);
  }

  /**
   * Initialises every shard's MikroORM (in parallel), connecting each when `connect` is set. If any shard fails, the
   * others are closed again and `SHARD_INIT_FAILED` names the shard.
   */
  static async open<D extends IDatabaseDriver>(options: Map<ShardId, ShardOptions<D>>, connect: boolean): Promise<Fleet<D>> {
    const fleet = new Fleet<D>(options);
    const ids = fleet.#ids;
    const results = await Promise.allSettled(
      ids.map(async id => {
        const orm = await MikroORM.init<D>(options.get(id)!);
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
    ids.forEach((id, i) => fleet.#adopt(id, (results[i] as PromiseFulfilledResult<MikroORM<D>>).value));
    return fleet;
  }

  /** The shard ids, in registry order. */
  get ids(): readonly ShardId[] {
    return this.#ids;
  }

  /** Whether a shard of this id is registered. */
  has(id: unknown): id is ShardId {
    return typeof id === 'string' && this.#options.has(id);
  }

  /** A shard's MikroORM. Throws `UNKNOWN_SHARD`, naming `source`, for an id that is not registered. */
  get(id: ShardId, source = 'orm.shard()'): MikroORM<D> {
    const orm = this.#open.get(id);
    if (!orm) {
      throw ShardingError.unknownShard(id, this.#ids, { source });
    }
    return orm;
  }

  /** The MikroORM options a shard was registered with (the shared options merged with its own). */
  options(id: ShardId): ShardOptions<D> | undefined {
    return this.#options.get(id);
  }

  /**
   * The shard whose MikroORM owns this configuration (every fork of a MikroORM shares its `Configuration`), or
   * undefined for another fleet's, or a closed shard's.
   */
  shardOfConfig(config: Configuration): ShardId | undefined {
    return this.#byConfig.get(config);
  }

  /** The MikroORM instances open now, by shard id. */
  get open(): ReadonlyMap<ShardId, MikroORM<D>> {
    return this.#open;
  }

  /** Closes every open shard; a failure on one does not keep the others open. */
  async close(force = false): Promise<void> {
    await settleEach('close', [...this.#open.keys()], id => this.#open.get(id)!.close(force));
  }

  #adopt(id: ShardId, orm: MikroORM<D>): void {
    this.#open.set(id, orm);
    this.#byConfig.set(orm.config, id);
  }
}
