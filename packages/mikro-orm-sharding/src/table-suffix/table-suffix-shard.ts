import { EntitySchema, ReferenceKind, type EntityMetadata, type IDatabaseDriver, type MetadataStorage, type Platform } from '@mikro-orm/core';
import { ShardingError } from '../errors/errors.ts';
import type { EntityList, ShardOptions } from '../options.ts';
import { traitsOf } from '../read/platform-traits.ts';
import { composable, type ComposedKeys } from './shared-options.ts';
import { sqliteWriterTurns } from './sqlite-writer-turns.ts';
import { transactionOwners } from './transaction-owners.ts';

/** Options of {@link tableSuffixShard}. */
export interface TableSuffixShardOptions {
  /** The entities whose tables carry the suffix (`Photo` -> `photo_<suffix>`): classes or schemas, not folders. */
  readonly entities: EntityList;
  /** The suffix: `[a-z0-9_]+` (an md5 hex digest from `md5Suffix()`, a tenant's slug ...). */
  readonly suffix: string;
}

/** Options of {@link sharedTablesShard}. */
export interface SharedTablesShardOptions {
  /** The entities whose one table every key shares (albums, users ...): they live on this shard only. */
  readonly entities: EntityList;
}

const SUFFIX = /^[a-z0-9_]+$/;
/** PostgreSQL cuts longer identifiers to 63 bytes: two suffixes could then name one table. */
const POSTGRES_IDENTIFIER_BYTES = 63;

/**
 * The options of one table-suffix shard: a MikroORM over the database of `base` (the same one as the other suffix
 * shards) whose metadata maps each of `entities` to `<table>_<suffix>`, through MikroORM's `discovery.onMetadata`
 * hook (no SQL is rewritten). Pass them as a shard of `ShardedMikroORM.init({ shards })` and route keys to them with
 * the `tableSuffix()` strategy. A bad suffix is refused here, with `INVALID_OPTIONS` naming the entities and the
 * value, before anything connects.
 *
 * The shard's schema generator sees only its own tables, so `orm.schema.create()`/`update()` on a shard neither
 * creates nor drops another shard's tables in the shared database. Its entities may relate to each other, not to
 * entities outside the list (refused at `init()`): put shared tables on a {@link sharedTablesShard}.
 *
 * @example
 * ```ts
 * shards: { [suffix]: tableSuffixShard({ dbName: 'photos.db' }, { entities: [Photo], suffix }) }
 * ```
 */
export function tableSuffixShard<D extends IDatabaseDriver = IDatabaseDriver>(base: ShardOptions<D>, options: TableSuffixShardOptions): ShardOptions<D> {
  const { entities, suffix } = checkOptions('tableSuffixShard()', options);
  const names = entityNames('tableSuffixShard()', entities);
  const label = names.join(', ');
  if (typeof suffix !== 'string' || !SUFFIX.test(suffix)) {
    throw ShardingError.invalidTableSuffix(
      label,
      suffix,
      'a suffix must match [a-z0-9_]+ (lower-case letters, digits, _), so that it names a table on every database.',
    );
  }
  return ownTablesShard(base, entities, 'tableSuffixShard()', (meta, platform) => {
    if (!names.includes(meta.className) && !names.includes(meta.root.className)) {
      return;
    }
    const table = `${meta.tableName}_${suffix}`;
    if (traitsOf(platform).family === 'postgresql' && Buffer.byteLength(table) > POSTGRES_IDENTIFIER_BYTES) {
      throw ShardingError.invalidTableSuffix(
        meta.className,
        suffix,
        `table ${JSON.stringify(table)} is longer than PostgreSQL's ${POSTGRES_IDENTIFIER_BYTES} bytes, and PostgreSQL would cut it. Use a shorter suffix or table name.`,
      );
    }
    meta.tableName = table;
  });
}

/**
 * The options of the shard that holds the tables every key shares, in the same database as the table-suffix shards:
 * its schema generator, like theirs, sees only its own tables. Its entities are bound to it (`binds`, or because no
 * other shard lists them).
 *
 * @example
 * ```ts
 * shards: { main: sharedTablesShard({ dbName: 'photos.db' }, { entities: [Album] }), ... }
 * ```
 */
export function sharedTablesShard<D extends IDatabaseDriver = IDatabaseDriver>(base: ShardOptions<D>, options: SharedTablesShardOptions): ShardOptions<D> {
  const { entities } = checkOptions('sharedTablesShard()', options);
  entityNames('sharedTablesShard()', entities);
  return ownTablesShard(base, entities, 'sharedTablesShard()', () => undefined);
}

function checkOptions<O extends { readonly entities: EntityList }>(owner: string, options: O): O {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions(`${owner} takes the shard's options and { entities${owner.startsWith('table') ? ', suffix' : ''} }.`, options);
  }
  return options;
}

/**
 * `base` with `entities`, the rename, and a schema generator blind to every table not its own: several shards share
 * the database, and `schema.update()` would otherwise drop each other's tables. The user's `discovery`,
 * `schemaGenerator` and `subscribers` (the base's, or `init()`'s shared ones) still apply, composed with these.
 */
function ownTablesShard<D extends IDatabaseDriver>(
  base: ShardOptions<D>,
  entities: EntityList,
  owner: string,
  rename: (meta: EntityMetadata, platform: Platform) => void,
): ShardOptions<D> {
  if (base === null || typeof base !== 'object') {
    throw ShardingError.invalidOptions(`${owner} takes the database's shard options first ({ dbName } or { clientUrl }).`, base);
  }
  if (base.entities !== undefined) {
    throw ShardingError.invalidOptions(
      `${owner} sets the shard's \`entities\` itself; list them in its second argument, and put entities shared by every key on a sharedTablesShard().`,
    );
  }
  if (base.dbName === ':memory:' || base.dbName === '') {
    throw ShardingError.invalidOptions(
      `${owner} needs a database the shards share; every connection to ':memory:' opens a new, empty one. Use a file (dbName: 'photos.db').`,
      base.dbName,
    );
  }
  const names = entityNames(owner, entities);
  const build = (user: ComposedKeys<D>): ComposedKeys<D> => {
    const own = new Set<string>();
    const discovery = user.discovery ?? {};
    const generator = user.schemaGenerator ?? {};
    return {
      discovery: {
        ...discovery,
        onMetadata: async (meta, platform) => {
          await discovery.onMetadata?.(meta, platform);
          rename(meta, platform);
        },
        afterDiscovered: async (storage, platform) => {
          checkRelations(storage, names, owner);
          for (const meta of storage) {
            own.add(meta.tableName.toLowerCase());
          }
          await discovery.afterDiscovered?.(storage, platform);
        },
      },
      schemaGenerator: { ...generator, skipTables: [...(generator.skipTables ?? []), tablesOtherThan(own)] },
      subscribers: [...(user.subscribers ?? []), transactionOwners(), sqliteWriterTurns()],
    };
  };
  const options: ShardOptions<D> = {
    // Every shard's init() would create the one missing database at once, and all but one would fail.
    ensureDatabase: false,
    ...base,
    // MikroORM's option type wants a mutable list; it is handed over as given.
    entities: entities as NonNullable<ShardOptions<D>['entities']>,
    ...build(base),
  };
  return composable(options, base, build);
}

/**
 * A pattern for MikroORM's `skipTables` matching every table this shard does not map. MikroORM matches a pattern that
 * is not a string with its `test()`; the names are known only once discovery has run.
 */
function tablesOtherThan(own: ReadonlySet<string>): RegExp {
  return Object.assign(/(?!)/, { test: (name: string) => !own.has(name.slice(name.lastIndexOf('.') + 1).toLowerCase()) });
}

/**
 * MikroORM discovers the targets of relations on its own: a suffixed entity pointing at one outside its list would
 * bring that table onto every suffix shard (and a many-to-many its unsuffixed pivot table). Refused at `init()`.
 */
function checkRelations(storage: MetadataStorage, names: readonly string[], owner: string): void {
  for (const meta of storage) {
    if (meta.embeddable || meta.virtual || names.includes(meta.className) || names.includes(meta.root.className)) {
      continue;
    }
    const brings = (prop: EntityMetadata['relations'][number]) => prop.targetMeta?.className === meta.className || prop.pivotEntity === meta.class;
    const from = [...storage].find(other => other.relations.some(brings));
    const through = from?.relations.find(brings);
    const relation = from && through ? `${from.className}.${through.name}` : 'a relation';
    throw ShardingError.invalidOptions(
      `${owner} lists ${names.join(', ')}, but ${relation} brings ${meta.className} (table ${JSON.stringify(meta.tableName)}) onto the shard too` +
        (through?.kind === ReferenceKind.MANY_TO_MANY ? ' (a many-to-many pivot table is not suffixed)' : '') +
        '. List it among the entities, or replace the relation with a plain column holding its key (a relation cannot leave the shard).',
      meta.className,
    );
  }
}

function entityNames(owner: string, entities: unknown): string[] {
  if (!Array.isArray(entities) || entities.length === 0) {
    throw ShardingError.invalidOptions(`${owner} needs \`entities\`: a non-empty list of entity classes or schemas.`, entities);
  }
  return entities.map(entity => {
    if (EntitySchema.is(entity)) {
      return entity.meta.className;
    }
    if (typeof entity === 'function' && entity.name !== '') {
      return entity.name;
    }
    throw ShardingError.invalidOptions(`${owner} takes entity classes or schemas, not folders or anything else.`, entity);
  });
}
