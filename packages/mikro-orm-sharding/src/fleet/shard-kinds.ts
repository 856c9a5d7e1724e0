import { MikroORM, type IDatabaseDriver, type MetadataStorage, type Options } from '@mikro-orm/core';
import { ormWithMetadata } from '../mikro-internals.ts';
import type { ShardOptions } from '../options.ts';

/**
 * Options that only say where and how a shard connects (and the library's per-shard wrappers of them): shards that
 * differ only here have the same metadata. Every other option may change what discovery finds (entities, naming
 * strategy, `discovery` hooks that rename tables, `schema`), so shards that differ in any other are of different kinds.
 */
const CONNECTION_ONLY = new Set([
  'dbName',
  'clientUrl',
  'host',
  'port',
  'user',
  'password',
  'pool',
  'driverOptions',
  'replicas',
  'contextName',
  'loggerFactory',
  'slowQueryLoggerFactory',
  'logger',
  'debug',
  'readOnly',
  'connect',
  'migrations',
  'seeder',
]);

/** A kind of shard: what discovery found once for every shard of the same kind. */
export interface ShardKind {
  readonly metadata: MetadataStorage;
  /**
   * The MikroORM that discovered the kind, never connected: the MikroORM-wide settings every shard of the kind
   * shares, and the staging forks where new entities wait for their shard (never flushed).
   */
  readonly template: MikroORM;
  readonly extensions: Options['extensions'];
}

/**
 * Discovers entity metadata once per kind of shard and builds each shard's MikroORM on it, so that opening a shard
 * is cheap (no discovery) and synchronous.
 */
export class ShardKinds {
  readonly #kinds = new Map<string, Promise<ShardKind>>();
  readonly #refs = new Map<unknown, number>();

  /** The kind of shards with these options, discovered on first call (MikroORM.init, not connected). */
  of(options: ShardOptions): Promise<ShardKind> {
    const key = this.#key(options);
    let kind = this.#kinds.get(key);
    if (!kind) {
      kind = MikroORM.init(options as Options).then(orm => ({ metadata: orm.getMetadata(), template: orm, extensions: orm.config.get('extensions') }));
      // A failed discovery is not remembered: the next shard of the kind tries again.
      kind.catch(() => this.#kinds.delete(key));
      this.#kinds.set(key, kind);
    }
    return kind;
  }

  /** A new MikroORM for a shard of a discovered kind: no discovery, no connection. */
  static build<D extends IDatabaseDriver>(options: ShardOptions<D>, kind: ShardKind): MikroORM<D> {
    return ormWithMetadata<D>(options as Options<D>, kind.metadata, kind.extensions);
  }

  #key(options: object): string {
    return Object.entries(options)
      .filter(([name, value]) => !CONNECTION_ONLY.has(name) && value !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => `${name}=${this.#valueKey(value)}`)
      .join(';');
  }

  /** Primitives by value, arrays item by item, anything else by identity. */
  #valueKey(value: unknown): string {
    if (Array.isArray(value)) {
      return `[${value.map(item => this.#valueKey(item)).join(',')}]`;
    }
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
      return JSON.stringify(value) ?? String(value);
    }
    let ref = this.#refs.get(value);
    if (ref === undefined) {
      ref = this.#refs.size;
      this.#refs.set(value, ref);
    }
    return `#${ref}`;
  }
}
