import type { Configuration, IDatabaseDriver, MetadataStorage, MikroORM } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { watchConnections } from '../mikro-internals.ts';
import type { ShardOptions } from '../options.ts';
import { FLEET_CONCURRENCY, runBounded } from './run-bounded.ts';
import { ShardKinds, type ShardKind } from './shard-kinds.ts';

/** Called once per shard and process, at the shard's first connection, before any query goes on (see `onShardOpen`). */
export type OnShardOpen = (args: { readonly id: ShardId; readonly orm: MikroORM }) => Promise<void> | void;

/** How the registry opens and closes shards. */
export interface FleetSettings {
  /** How many shards may be open at once; the least recently used idle one is closed beyond it. */
  readonly maxOpenShards: number;
  readonly onShardOpen?: OnShardOpen;
}

interface Entry<D extends IDatabaseDriver> {
  readonly id: ShardId;
  readonly options: ShardOptions<D>;
  readonly kind: ShardKind;
  /** The shard's own open hook (a tenant's schema), run before the fleet's `onShardOpen`. */
  readonly onOpen?: OnShardOpen;
  /** The shard's MikroORM while open (held by the registry). */
  orm?: MikroORM<D>;
  /** A closed shard's MikroORM, as long as something (an entity manager, an entity) still holds it. */
  closed?: WeakRef<MikroORM<D>>;
  /** Queries and transactions in flight, plus leases. */
  busy: number;
  closing?: Promise<void>;
  opened?: Promise<void>;
  removed?: boolean;
}

/**
 * The shard registry: the one place that knows which shards exist and holds their MikroORM instances. A shard is
 * known by its id. Its MikroORM is built on first use (on metadata discovered once per kind of shard, see
 * {@link ShardKinds}) and connects when it first queries; beyond `maxOpenShards` the least recently used shard with
 * no query, transaction or lease in flight is closed, and opens again on its next use. An entity's shard is found
 * through the `Configuration` of the entity manager that loaded it ({@link Fleet.shardOfConfig}), for every MikroORM
 * a shard ever had.
 *
 * @internal
 */
export class Fleet<D extends IDatabaseDriver = IDatabaseDriver> {
  readonly #entries = new Map<ShardId, Entry<D>>();
  /** Open shards, least recently used first. */
  readonly #lru = new Set<Entry<D>>();
  readonly #byConfig = new WeakMap<Configuration, ShardId>();
  readonly #removed = new Set<ShardId>();
  readonly #kinds = new ShardKinds();
  readonly #settings: FleetSettings;
  readonly #idle = new Set<() => void>();
  readonly #instanceHooks: ((id: ShardId, orm: MikroORM) => void)[] = [];
  #ids: readonly ShardId[] = Object.freeze([]);
  #defaultKind: ShardKind | undefined;

  private constructor(settings: FleetSettings) {
    this.#settings = settings;
  }

  /**
   * Registers the shards and discovers their metadata (once per kind), then connects each when `connect` is set
   * (at most `maxOpenShards` stay open). If any shard fails, the others are closed again and `SHARD_INIT_FAILED`
   * names the shard. `fallback` are options to discover the entities with when there is no shard.
   */
  static async open<D extends IDatabaseDriver>(
    options: Map<ShardId, ShardOptions<D>>,
    connect: boolean,
    settings: FleetSettings,
    fallback: ShardOptions<D>,
  ): Promise<Fleet<D>> {
    const fleet = new Fleet<D>(settings);
    try {
      for (const [id, own] of options) {
        await fleet.add(id, own);
      }
      fleet.#defaultKind = options.size === 0 ? await fleet.#kinds.of(fallback) : undefined;
      if (connect) {
        const outcomes = await runBounded([...options.keys()], id => fleet.get(id).connect(), { concurrency: FLEET_CONCURRENCY });
        const failed = outcomes.find(outcome => outcome.status === 'failed');
        if (failed?.status === 'failed') {
          throw ShardingError.shardInitFailed(failed.shard, failed.error);
        }
      }
    } catch (error) {
      await fleet.close(true).catch(() => undefined);
      throw error;
    }
    return fleet;
  }

  /**
   * Registers a shard (validated options); discovers its kind's metadata if no shard of its kind did. `onOpen` runs
   * once at its first connection, before the fleet's `onShardOpen`.
   */
  async add(id: ShardId, options: ShardOptions<D>, onOpen?: OnShardOpen): Promise<void> {
    let kind: ShardKind;
    try {
      kind = await this.#kinds.of(options);
    } catch (error) {
      throw ShardingError.shardInitFailed(id, error);
    }
    if (this.#entries.has(id)) {
      throw ShardingError.duplicateShard(id);
    }
    this.#removed.delete(id);
    this.#entries.set(id, { id, options, kind, onOpen, busy: 0 });
    this.#ids = Object.freeze([...this.#entries.keys()]);
  }

  /**
   * Unregisters a shard: later uses get `SHARD_REMOVED` at once; waits for its queries, transactions and leases
   * to finish, then closes it.
   */
  async remove(id: ShardId): Promise<void> {
    const entry = this.#entry(id, 'orm.removeShard()');
    entry.removed = true;
    this.#entries.delete(id);
    this.#removed.add(id);
    this.#ids = Object.freeze([...this.#entries.keys()]);
    while (entry.busy > 0) {
      await new Promise<void>(resolve => this.#idle.add(resolve));
    }
    await entry.closing;
    await this.#close(entry, false);
  }

  /**
   * Runs `hook` on every MikroORM the registry built and builds from now on (a shard's first, and a new one after
   * a closed one was forgotten): event subscribers a shard's instance needs.
   */
  onInstance(hook: (id: ShardId, orm: MikroORM) => void): void {
    this.#instanceHooks.push(hook);
    for (const entry of this.#entries.values()) {
      const orm = entry.orm ?? entry.closed?.deref();
      if (orm) hook(entry.id, orm as MikroORM);
    }
  }

  /** The shard ids, in registry order. */
  get ids(): readonly ShardId[] {
    return this.#ids;
  }

  /** Whether a shard of this id is registered. */
  has(id: unknown): id is ShardId {
    return typeof id === 'string' && this.#entries.has(id);
  }

  /**
   * A shard's MikroORM, built now if the shard is not open (not connected: it connects on its first query).
   * Throws `UNKNOWN_SHARD` (or `SHARD_REMOVED`), naming `source`, for an id that is not registered.
   */
  get(id: ShardId, source = 'orm.shard()'): MikroORM<D> {
    const entry = this.#entry(id, source);
    this.#touch(entry);
    return entry.orm ?? this.#reopen(entry);
  }

  /**
   * Holds a shard open until `release` is called (it is never closed for `maxOpenShards` meanwhile), waiting for
   * a close in progress first.
   */
  async lease(id: ShardId, source: string): Promise<{ readonly orm: MikroORM<D>; release(): void }> {
    const entry = this.#entry(id, source);
    await entry.closing;
    const orm = this.get(id, source);
    entry.busy++;
    let released = false;
    return {
      orm,
      release: () => {
        if (!released) {
          released = true;
          this.#busy(entry, -1);
        }
      },
    };
  }

  /** The MikroORM options a shard was registered with (the shared options merged with its own). */
  options(id: ShardId): ShardOptions<D> | undefined {
    return this.#entries.get(id)?.options;
  }

  /** A shard's entity metadata, without opening it (shards of one kind share it). */
  metadata(id: ShardId): MetadataStorage {
    return this.#entry(id, 'the metadata of a shard').kind.metadata;
  }

  /**
   * The never-connected MikroORM of a shard's kind (of the first shard's without `id`, of the shared options when
   * there is no shard): MikroORM-wide settings, repositories, staging forks. Never queried.
   */
  template(id: ShardId | undefined = this.#ids[0]): MikroORM<D> {
    return (id === undefined ? this.#defaultKind! : this.#entry(id, 'the template of a shard').kind).template as MikroORM<D>;
  }

  /** MikroORM-wide settings (`allowGlobalContext`, `persistOnCreate` ...): the first shard's kind's. */
  get config(): Configuration {
    return this.template().config;
  }

  /** The entity metadata of the first shard's kind (of the shared options, when there is no shard). */
  get defaultMetadata(): MetadataStorage {
    return this.template().getMetadata();
  }

  /** The shard whose MikroORM (any it had) owns this configuration, or undefined for another fleet's. */
  shardOfConfig(config: Configuration): ShardId | undefined {
    return this.#byConfig.get(config);
  }

  /** The MikroORM instances open now, by shard id, in registry order. */
  get open(): ReadonlyMap<ShardId, MikroORM<D>> {
    return new Map([...this.#entries.values()].filter(entry => entry.orm !== undefined).map(entry => [entry.id, entry.orm!]));
  }

  /** How many shards are open now. */
  get openCount(): number {
    return this.#lru.size;
  }

  /** Closes every open shard (a few at a time); a failure on one does not keep the others open, and is rethrown. */
  async close(force = false): Promise<void> {
    const open = new Map([...this.#lru].map(entry => [entry.id, entry]));
    const outcomes = await runBounded([...open.keys()], id => this.#close(open.get(id)!, force), { concurrency: FLEET_CONCURRENCY, keepGoing: true });
    const failed = outcomes.find(outcome => outcome.status === 'failed');
    if (failed?.status === 'failed') {
      throw failed.error;
    }
  }

  /** The error for an id that is not registered: `SHARD_REMOVED` for one `remove()` took away, else `UNKNOWN_SHARD`. */
  notRegistered(id: unknown, context: { readonly entity?: string; readonly source: string }): ShardingError {
    return typeof id === 'string' && this.#removed.has(id)
      ? ShardingError.shardRemoved(id, context.source)
      : ShardingError.unknownShard(id, this.#ids, context);
  }

  #entry(id: ShardId, source: string): Entry<D> {
    const entry = this.#entries.get(id);
    if (!entry) {
      throw this.notRegistered(id, { source });
    }
    return entry;
  }

  /** The shard's MikroORM again: the one it had if something still holds it (its entities know it), else a new one. */
  #reopen(entry: Entry<D>): MikroORM<D> {
    let orm = entry.closed?.deref();
    if (!orm) {
      orm = ShardKinds.build<D>(entry.options, entry.kind);
      this.#byConfig.set(orm.config, entry.id);
      this.#watch(entry, orm);
      this.#instanceHooks.forEach(hook => hook(entry.id, orm as MikroORM));
    }
    entry.closed = undefined;
    this.#adopt(entry, orm);
    return orm;
  }

  #adopt(entry: Entry<D>, orm: MikroORM<D>): void {
    entry.orm = orm;
    this.#lru.add(entry);
    this.#evict();
  }

  #watch(entry: Entry<D>, orm: MikroORM<D>): void {
    watchConnections(orm, {
      connected: () => {
        if (entry.removed) {
          throw ShardingError.shardRemoved(entry.id, 'a query');
        }
        if (entry.orm !== orm) {
          // A closed shard's entity manager queried again: the shard is open again.
          this.#adopt(entry, orm);
        }
        entry.opened ??= this.#opening(entry, orm as MikroORM);
        return entry.opened.catch(error => {
          entry.opened = undefined;
          throw error;
        });
      },
      busy: delta => {
        if (delta > 0) this.#touch(entry);
        this.#busy(entry, delta);
      },
      gate: () => entry.closing,
    });
  }

  async #opening(entry: Entry<D>, orm: MikroORM): Promise<void> {
    await entry.onOpen?.({ id: entry.id, orm });
    await this.#settings.onShardOpen?.({ id: entry.id, orm });
  }

  #touch(entry: Entry<D>): void {
    if (this.#lru.delete(entry)) {
      this.#lru.add(entry);
    }
  }

  #busy(entry: Entry<D>, delta: 1 | -1): void {
    entry.busy += delta;
    if (entry.busy === 0) {
      this.#evict();
      if (this.#idle.size > 0) {
        const waiting = [...this.#idle];
        this.#idle.clear();
        waiting.forEach(resolve => resolve());
      }
    }
  }

  /** Closes least recently used idle shards while more than `maxOpenShards` are open; never a busy one. */
  #evict(): void {
    if (this.#lru.size <= this.#settings.maxOpenShards) {
      return;
    }
    const newest = [...this.#lru].at(-1);
    for (const entry of this.#lru) {
      if (this.#lru.size <= this.#settings.maxOpenShards) {
        break;
      }
      if (entry.busy === 0 && entry !== newest) {
        void this.#close(entry, false).catch(() => undefined);
      }
    }
  }

  async #close(entry: Entry<D>, force: boolean): Promise<void> {
    const orm = entry.orm;
    if (!orm) {
      return;
    }
    this.#lru.delete(entry);
    entry.orm = undefined;
    entry.closed = new WeakRef(orm);
    const closing = orm.close(force).finally(() => {
      if (entry.closing === closing) entry.closing = undefined;
    });
    entry.closing = closing;
    await closing;
  }
}
