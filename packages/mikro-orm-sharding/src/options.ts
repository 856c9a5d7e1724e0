import type { AnyEntity, EntityClass, EntityName, EntitySchema, IDatabaseDriver, Options } from '@mikro-orm/core';
import { AbstractSqlDriver } from '@mikro-orm/sql';
import type { IdChooser, QueryChooser, ShardChooser, ShardId } from './choosers.ts';
import { withConnectionDefaults } from './fleet/connection-defaults.ts';
import { describe, ShardingError } from './errors/errors.ts';
import { secondCopyError } from './fleet/mikro-orm-copies.ts';
import { withShardLoggers } from './fleet/shard-logging.ts';
import { rememberSecrets } from './errors/redact.ts';
import type { CircuitBreakerOptions } from './fleet/circuit-breaker.ts';
import type { OnShardError } from './read/partial.ts';
import type { ShardByOptions } from './routing/shard-by.ts';
import { checkBindOptions, deriveShardEntities } from './routing/binds.ts';
import type { OnShardOpen } from './fleet/fleet.ts';
import type { TransactionMode, TwoPhaseCommitOptions } from './transactions/settings.ts';
import { withSharedOptions } from './table-suffix/shared-options.ts';

/**
 * MikroORM options of one shard: anything `MikroORM.init()` takes (`dbName`, `clientUrl`, `driver`, pool,
 * `replicas` ...), plus `readOnly`.
 */
export type ShardOptions<D extends IDatabaseDriver = IDatabaseDriver> = Partial<Options<D>> & {
  /**
   * Refuse every write routed to this shard (a chooser's, `{ shard }`, a bind, a pin, `insert`/`upsert`,
   * `nativeUpdate`/`nativeDelete`, a flush of its entities) with `READ_ONLY_SHARD`, before anything is written on any
   * shard. Reads are not affected; `orm.schema` and `orm.migrator` leave the shard alone. For an archive, a
   * reporting copy, or a database your role may only read.
   * @default false
   */
  readonly readOnly?: boolean;
};

/**
 * Entities that live on one fixed shard, a named database: entity name (or class, in a `Map`) to shard id. See
 * {@link ShardedMikroORMOptions.binds}.
 */
export type Binds<Id extends string = ShardId> = Readonly<Record<string, Id>> | ReadonlyMap<string | EntityName<object>, Id>;

/** MikroORM's `entities` option: entity classes, schemas, or folder paths. */
export type EntityList = readonly (string | EntityClass<AnyEntity> | EntitySchema)[];

/** The `shards` option: each key a shard id, each value that shard's overrides of the shared options. */
export type ShardMap<D extends IDatabaseDriver = IDatabaseDriver> = Readonly<Record<ShardId, ShardOptions<D> | string>>;

/**
 * The shard ids of a `shards` option: its keys (`'s0' | 's1'` for a literal, `string` for a record built at runtime,
 * or for `shards: {}`, a registry filled by `orm.addShard()`).
 */
export type ShardIdsOf<Shards> = [keyof Shards & string] extends [never] ? string : keyof Shards & string;

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
  /**
   * Decides where a new entity is written. Required unless `shardBy` declares the entities written, or every entity
   * is bound (`binds`, `defaultBind`); where a declaration is given too, the chooser is asked first, and answers
   * `undefined` to let `shardBy` decide.
   */
  readonly shardChooser?: ShardChooser<NoInfer<ShardIdsOf<Shards>>, NoInfer<FleetEntity<Entities, Shards>>>;
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
   * Shard keys, per entity name: the library derives where new entities go, which shard a primary key is on, and
   * which shards a query can find rows on (see docs/strategies.md). Hand-written choosers, where given, are asked
   * first; they answer `undefined` to let the declaration decide.
   *
   * @example
   * ```ts
   * shardBy: {
   *   Author: { key: 'id', strategy: hash({ shards: ['s0', 's1', 's2', 's3'] }) },
   *   Book: { parent: 'author' },
   * }
   * ```
   */
  readonly shardBy?: ShardByOptions;
  /**
   * Refuse queries on declared entities whose condition does not pin the shard key (`SHARD_KEY_REQUIRED`) instead of
   * reading every shard; each declaration may say otherwise (`requireShardKey` in `shardBy`).
   * @default false
   */
  readonly requireShardKey?: boolean;
  /**
   * Entities that live on one fixed shard (a named database, like SQLAlchemy's `binds` or Flask's `__bind_key__`):
   * entity name to shard id, or a `Map` from entity class to shard id. Writes, primary-key lookups and queries of a
   * bound entity go to its shard only, without asking the choosers; an entity inherits its root entity's bind.
   * A shard without its own `entities` holds the entities bound to it, or, when no bind names it, every entity no
   * bind names. A relation between a bound entity and an entity that lives elsewhere is refused by `init()`
   * (`CROSS_BIND_RELATION`).
   *
   * @example
   * ```ts
   * binds: { Transaction: 'warehouse', AuditEntry: 'log' }, defaultBind: 'main'
   * ```
   */
  readonly binds?: Binds<NoInfer<ShardIdsOf<Shards>>>;
  /**
   * The shard of every entity `binds` does not name: with it every entity is bound, and no chooser is needed.
   * @default none: entities `binds` does not name are placed by the choosers
   */
  readonly defaultBind?: NoInfer<ShardIdsOf<Shards>>;
  /**
   * Read your writes: once an entity manager has written to a shard that has read `replicas`, its reads of that
   * shard go to the primary (`connectionType: 'write'`) for the rest of its life, unless a call passes its own
   * `connectionType`. Off, reads go where MikroORM sends them (`preferReadReplicas`).
   * @default true
   */
  readonly readYourWrites?: boolean;
  /**
   * Connect to every shard of `shards` during `init()`, so an unreachable shard fails startup with its name
   * (MikroORM alone connects on first use). Shards added later (`orm.addShard()`) connect on first use.
   * @default true, or false with `maxOpenShards`
   */
  readonly connect?: boolean;
  /**
   * How many shards may be open (hold a MikroORM instance and its connections) at once. Beyond it the least recently
   * used shard with no query, transaction or lease in flight is closed, and opens again on its next use; a shard in
   * use is never closed, so more may be open for as long as they are all busy. See docs/registry.md.
   * @default unlimited (`Infinity`)
   */
  readonly maxOpenShards?: number;
  /**
   * Called once per shard and process when the shard first connects, before any query goes on: create or update
   * its schema (`orm.schema.update()`), seed it, check it. A failure fails the query that opened the shard; the
   * next use tries again.
   *
   * @example
   * ```ts
   * onShardOpen: ({ orm }) => orm.schema.update()
   * ```
   */
  readonly onShardOpen?: OnShardOpen;
  /**
   * What a query over several shards does when some of them cannot be reached (`SHARD_UNAVAILABLE`): `'fail'` throws,
   * `'partial'` answers from the shards that could (see `partialFailuresOf`), a function answers as `'partial'` and
   * is called with the report. Each `find`, `findAll`, `findAndCount` and `count` may override it. Other errors always
   * fail the query.
   * @default 'fail'
   */
  readonly onShardError?: OnShardError;
  /**
   * The per-shard circuit breaker of PostgreSQL shards: after repeated connection failures a shard is refused at once
   * (`SHARD_UNAVAILABLE`) for a cool-down, then probed. `false` turns it off (failures are still counted for
   * `orm.health()`). See docs/failure.md.
   * @default { failureThreshold: 5, coolDownMs: 5_000, halfOpenProbes: 1 }
   */
  readonly circuitBreaker?: CircuitBreakerOptions | boolean;
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
  const { shards, shardChooser, idChooser, queryChooser, shardBy, binds, defaultBind } = options;
  const shared = sharedOptionsOf(options as ShardedMikroORMOptions<D, object, EntityList>);
  // First of all: every error from here on may echo options, and must mask their passwords.
  rememberSecrets(shared);
  if (shards !== null && typeof shards === 'object') {
    Object.values(shards).forEach(own => rememberSecrets(typeof own === 'string' ? { clientUrl: own } : (own ?? {})));
  }
  // `shards: {}` is a registry filled at runtime (`orm.addShard()`); a missing map is a mistake.
  if (shards === null || typeof shards !== 'object' || Array.isArray(shards)) {
    throw ShardingError.noShards();
  }
  if (shardChooser === undefined ? shardBy === undefined && binds === undefined && defaultBind === undefined : typeof shardChooser !== 'function') {
    throw ShardingError.missingChooser('shardChooser');
  }
  for (const [name, chooser] of Object.entries({ shardChooser, idChooser, queryChooser })) {
    if (chooser !== undefined && typeof chooser !== 'function') {
      if (name === 'shardChooser') {
        throw ShardingError.missingChooser('shardChooser');
      }
      throw ShardingError.invalidOptions(`\`${name}\` must be a function returning shard ids; got ${typeof chooser}.`, chooser);
    }
  }
  const configs = new Map<ShardId, ShardOptions<D>>();
  for (const [id, entry] of Object.entries(shards)) {
    configs.set(id, shardConfig<D>(id, entry, shared));
  }
  checkBindOptions({ binds, defaultBind }, [...configs.keys()]);
  deriveShardEntities(configs, options.entities, shardsListingEntities(shards), { binds, defaultBind });
  return configs;
}

/** The options every shard shares: MikroORM's own, without the sharding options. */
export function sharedOptionsOf<D extends IDatabaseDriver>(options: ShardedMikroORMOptions<D, object, EntityList>): ShardOptions<D> {
  const {
    shards,
    shardChooser,
    idChooser,
    queryChooser,
    connect,
    onShardError,
    circuitBreaker,
    shardBy,
    requireShardKey,
    binds,
    defaultBind,
    readYourWrites,
    transactionMode,
    twoPhaseCommit,
    maxOpenShards,
    onShardOpen,
    ...shared
  } = options;
  return shared as ShardOptions<D>;
}

/** The shard ids `init()` and `addShard()` take: letters, digits, `_`, `-`, `.` and `:`, at most 200 characters. */
const SHARD_ID = /^[A-Za-z0-9_.:-]{1,200}$/;

/**
 * One shard's MikroORM options: the shared options merged with its own (an options object or a connection URL),
 * validated, with its logger and connection defaults. Throws {@link ShardingError}.
 */
export function shardConfig<D extends IDatabaseDriver>(id: ShardId, entry: unknown, shared: object): ShardOptions<D> {
  if (typeof id !== 'string' || id === '') {
    throw ShardingError.invalidOptions('a shard id cannot be empty.', id);
  }
  if (!SHARD_ID.test(id)) {
    throw ShardingError.invalidOptions(`shard id ${describe(id)} may only hold letters, digits, \`_\`, \`-\`, \`.\` and \`:\` (at most 200).`, id);
  }
  rememberSecrets(typeof entry === 'string' ? { clientUrl: entry } : ((entry ?? {}) as object));
  const own = shardEntry<D>(id, entry as ShardOptions<D> | string | null | undefined);
  // MikroORM's own option type wants a mutable `entities` array; the list is handed over as given.
  const merged = { ...shared, ...withSharedOptions(own, shared), contextName: id } as ShardOptions<D>;
  const driver = merged.driver as unknown;
  if (typeof driver !== 'function' || !(driver.prototype instanceof AbstractSqlDriver)) {
    throw secondCopyError(id, driver) ?? ShardingError.unsupportedDriver(id, driver);
  }
  checkUrls(id, merged);
  return withShardLoggers(withConnectionDefaults<D>(merged), id);
}

/** The shards whose own options list `entities` (binds leave those lists as they are). */
function shardsListingEntities(shards: object): ReadonlySet<ShardId> {
  return new Set(
    Object.entries(shards)
      .filter(([, own]) => own !== null && typeof own === 'object' && (own as { entities?: unknown }).entities !== undefined)
      .map(([id]) => id),
  );
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
      `shard ${describe(id)} must map to an options object (e.g. { dbName }) or a connection URL; got ${describe(entry)}.`,
      entry,
    );
  }
  return entry;
}
