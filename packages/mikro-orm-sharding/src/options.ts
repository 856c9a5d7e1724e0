import type { AnyEntity, EntityClass, EntitySchema, IDatabaseDriver, Options } from '@mikro-orm/core';
import { AbstractSqlDriver } from '@mikro-orm/sql';
import type { IdChooser, QueryChooser, ShardChooser, ShardId } from './choosers.ts';
import { withConnectionDefaults } from './fleet/connection-defaults.ts';
import { describe, ShardingError } from './errors/errors.ts';
import { secondCopyError } from './fleet/mikro-orm-copies.ts';
import { withShardLoggers } from './fleet/shard-logging.ts';
import { rememberSecrets } from './errors/redact.ts';
import type { TransactionMode, TwoPhaseCommitOptions } from './transactions/settings.ts';

/** MikroORM options of one shard: anything `MikroORM.init()` takes (`dbName`, `clientUrl`, `driver`, pool ...). */
export type ShardOptions<D extends IDatabaseDriver = IDatabaseDriver> = Partial<Options<D>>;

/** MikroORM's `entities` option: entity classes, schemas, or folder paths. */
export type EntityList = readonly (string | EntityClass<AnyEntity> | EntitySchema)[];

/** The `shards` option: each key a shard id, each value that shard's overrides of the shared options. */
export type ShardMap<D extends IDatabaseDriver = IDatabaseDriver> = Readonly<Record<ShardId, ShardOptions<D> | string>>;

/** The shard ids of a `shards` option: its keys (`'s0' | 's1'` for a literal, `string` for a record built at runtime). */
export type ShardIdsOf<Shards> = keyof Shards & string;

type Listed<Item> = Item extends EntitySchema<infer Entity, unknown> ? Entity : Item extends EntityClass<infer Entity> ? Entity : never;

/** The entities of one `entities` list: the union of its classes and schemas; `object` when it names folders or is untyped. */
type EntitiesIn<List> = List extends readonly (infer Item)[]
  ? (string | EntityClass<AnyEntity> | EntitySchema)[] extends List
    ? object
    : [Extract<Item, string>] extends [never]
      ? Listed<Item>
      : object
  : never;

/** What a shard chooser may be given: every entity the shared and the shards' own `entities` lists name. */
export type FleetEntity<Entities, Shards> = EntitiesIn<Entities> | ShardEntities<Shards[keyof Shards]>;

type ShardEntities<Shard> = Shard extends { readonly entities?: infer List } ? EntitiesIn<List> : never;

/**
 * Options of {@link ShardedMikroORM.init}: MikroORM's own options, shared by every shard, plus the shard map and
 * the three choosers. Shard ids are typed from the keys of `shards`, and the shard chooser's `entity` from `entities`.
 *
 * PostgreSQL shards get `driverOptions: { connectionTimeoutMillis: 10_000, statement_timeout: 60_000 }` unless
 * their options set those keys (`0` turns one off), so a shard that never answers fails by name.
 *
 * @example
 * ```ts
 * const orm = await ShardedMikroORM.init({
 *   driver: SqliteDriver,
 *   entities: [Author, Book],
 *   shards: { s0: { dbName: 's0.db' }, s1: { dbName: 's1.db' } },
 *   shardChooser: ({ entity }) => (entity instanceof Book ? 's0' : entity.id % 2 ? 's1' : 's0'),
 *   idChooser: ({ id }) => (Number(id) % 2 ? ['s1'] : ['s0']),
 *   queryChooser: () => ['s0', 's1'],
 * });
 * ```
 */
export interface ShardedMikroORMOptions<
  D extends IDatabaseDriver = IDatabaseDriver,
  Shards extends object = ShardMap<D>,
  Entities extends EntityList = EntityList,
> extends Omit<ShardOptions<D>, 'entities'> {
  /** The entities, shared by every shard (MikroORM's `entities`). */
  readonly entities?: Entities;
  /**
   * The shards: each key is a shard id, each value that shard's overrides of the shared options, or a connection
   * URL as a shorthand for `{ clientUrl }`.
   *
   * @example
   * ```ts
   * shards: { s0: { dbName: 's0.db' }, s1: 'postgresql://app@db1.internal:5432/books' }
   * ```
   */
  readonly shards: ShardMap<D> & Shards;
  /** Decides where a new entity is written. Required. */
  readonly shardChooser: ShardChooser<NoInfer<ShardIdsOf<Shards>>, NoInfer<FleetEntity<Entities, Shards>>>;
  /**
   * Ordered candidate shards for a primary-key lookup.
   * @default every shard, in the order of `shards`
   */
  readonly idChooser?: IdChooser<NoInfer<ShardIdsOf<Shards>>>;
  /**
   * Shards a query fans out to.
   * @default every shard, in the order of `shards`
   */
  readonly queryChooser?: QueryChooser<NoInfer<ShardIdsOf<Shards>>>;
  /**
   * Connect to every shard during `init()`, so an unreachable shard fails startup with its name
   * (MikroORM alone connects on first use).
   * @default true
   */
  readonly connect?: boolean;
  /**
   * How a transaction that touches several shards commits (`em.transactional()`, `em.begin()`), and so does a
   * `flush()` outside one that writes several shards: `'single'` (one shard only), `'multi'` (one transaction per
   * shard, committed in turn) or `'twopc'` (two-phase commit, PostgreSQL; needs `twoPhaseCommit`). A transaction's
   * own `{ mode }` overrides it. See docs/transactions.md.
   * @default 'multi'
   */
  readonly transactionMode?: TransactionMode;
  /**
   * Two-phase commit's coordinator log and name. Needed for mode `'twopc'`; every shard must be PostgreSQL with
   * `max_prepared_transactions` above 0. `init()` creates the log table and resolves transactions left in doubt.
   *
   * @example
   * ```ts
   * twoPhaseCommit: { coordinatorId: 'billing', logShard: 's0' }
   * ```
   */
  readonly twoPhaseCommit?: TwoPhaseCommitOptions<NoInfer<ShardIdsOf<Shards>>>;
}

/** Identity function that gives a sharding config its type, like MikroORM's `defineConfig`. */
export function defineShardingConfig<D extends IDatabaseDriver, Shards extends object, Entities extends EntityList = EntityList>(
  options: ShardedMikroORMOptions<D, Shards, Entities>,
): ShardedMikroORMOptions<D, Shards, Entities> {
  return options;
}

/** The options split into what each shard's MikroORM gets, validated. Throws {@link ShardingError}. */
export function shardConfigs<D extends IDatabaseDriver, Shards extends object, Entities extends EntityList>(
  options: ShardedMikroORMOptions<D, Shards, Entities>,
): Map<ShardId, ShardOptions<D>> {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions('pass an options object.', options);
  }
  const { shards, shardChooser, idChooser, queryChooser, connect, transactionMode, twoPhaseCommit, ...shared } = options;
  // First of all: every error from here on may echo options, and must mask their passwords.
  rememberSecrets(shared);
  if (shards !== null && typeof shards === 'object') {
    Object.values(shards).forEach(own => rememberSecrets(typeof own === 'string' ? { clientUrl: own } : (own ?? {})));
  }
  if (shards === null || typeof shards !== 'object' || Object.keys(shards).length === 0) {
    throw ShardingError.noShards();
  }
  if (typeof shardChooser !== 'function') {
    throw ShardingError.missingChooser('shardChooser');
  }
  for (const [name, chooser] of Object.entries({ idChooser, queryChooser })) {
    if (chooser !== undefined && typeof chooser !== 'function') {
      throw ShardingError.invalidOptions(`\`${name}\` must be a function returning shard ids; got ${typeof chooser}.`, chooser);
    }
  }
  const configs = new Map<ShardId, ShardOptions<D>>();
  for (const [id, entry] of Object.entries(shards)) {
    if (id === '') {
      throw ShardingError.invalidOptions('a shard id cannot be empty.', id);
    }
    const own = shardEntry<D>(id, entry);
    // MikroORM's own option type wants a mutable `entities` array; the list is handed over as given.
    const merged = { ...shared, ...own, contextName: id } as ShardOptions<D>;
    const driver = merged.driver as unknown;
    if (typeof driver !== 'function' || !(driver.prototype instanceof AbstractSqlDriver)) {
      throw secondCopyError(id, driver) ?? ShardingError.unsupportedDriver(id, driver);
    }
    checkUrls(id, merged);
    configs.set(id, withShardLoggers(withConnectionDefaults<D>(merged), id));
  }
  return configs;
}

/**
 * A `clientUrl` MikroORM cannot parse fails only when the shard connects, and Node's error then carries the whole
 * URL, password included: refuse it up front, masked.
 */
function checkUrls(id: ShardId, options: ShardOptions): void {
  const urls = [options.clientUrl, ...(options.replicas ?? []).map(replica => replica.clientUrl)];
  for (const url of urls) {
    if (url !== undefined && (typeof url !== 'string' || !URL.canParse(url))) {
      throw ShardingError.invalidOptions(`shard ${describe(id)} has a \`clientUrl\` that is not a valid URL: ${describe(url)}.`, url);
    }
  }
}

/** A shard's own options: an options object, or a connection URL standing for `{ clientUrl }`. */
function shardEntry<D extends IDatabaseDriver>(id: ShardId, entry: ShardOptions<D> | string | null | undefined): ShardOptions<D> {
  if (typeof entry === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) {
    return { clientUrl: entry } as ShardOptions<D>;
  }
  if (typeof entry === 'string') {
    // Not echoed: a malformed connection string may still hold a password.
    throw ShardingError.invalidOptions(
      `shard ${describe(id)} is a string that is not a connection URL; pass a URL (\`postgresql://user@host:5432/db\`) or an options object (for a SQLite file, \`{ dbName: 'file.db' }\`).`,
    );
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw ShardingError.invalidOptions(
      `shard ${describe(id)} must map to an options object (e.g. { dbName }) or a connection URL; got ${describe(entry) || 'undefined'}.`,
      entry,
    );
  }
  return entry;
}
