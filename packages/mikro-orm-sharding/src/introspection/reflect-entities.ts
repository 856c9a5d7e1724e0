import { defineEntity, MikroORM, p, type Dictionary, type EntityClass, type Options } from '@mikro-orm/core';
import type { AbstractSqlPlatform } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { fleetRunTargets } from '../fleet/run-bounded.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { defineTables, type EntityDefinition, type PropertyDefinition, type SkippedTable } from './entity-definitions.ts';
import { introspectTables } from './introspect.ts';

/** Options of {@link reflectEntities}. */
export interface ReflectEntitiesOptions {
  /**
   * The shard whose tables are read, when the source is a fleet.
   * @default the first shard
   */
  readonly shard?: ShardId;
  /**
   * The tables to map, by name; each must exist. Foreign keys to tables not mapped become plain columns.
   * @default every table, except MikroORM's migrations table and the config's `schemaGenerator.skipTables`
   */
  readonly tables?: readonly string[];
}

/** A reflected entity class: its properties are known at run time only. */
export type ReflectedEntity = EntityClass<Dictionary>;

/** What {@link reflectEntities} read. */
export interface ReflectedEntities {
  /** The shard whose tables were read; undefined when the source was a database's options. */
  readonly shard?: ShardId;
  /** The entity classes, one per mapped table, for a fleet's (or a MikroORM's) `entities`. */
  readonly entities: readonly ReflectedEntity[];
  /** How each entity was built, for {@link generateEntitySource} (one per entry of `entities`, in that order). */
  readonly definitions: readonly EntityDefinition[];
  /** The tables left out, with the reason: no primary key, a column type MikroORM does not map. */
  readonly skipped: readonly SkippedTable[];
  /** The entity class of a table; throws a `ShardingError` naming the table when it was not mapped. */
  entity(table: string): ReflectedEntity;
}

/**
 * Reads one database's tables with MikroORM's schema introspection and builds an entity for each at run time
 * (`defineEntity` + `setClass`), as SQLAlchemy's automap reflects tables into classes: the column types, primary keys
 * (composite, autoincrement), nullability, defaults, unique columns and foreign keys (many-to-one relations keeping
 * their column names, with the one-to-many inverse side) that MikroORM's own entity generator reads. Table and column
 * names are kept exactly. Tables MikroORM cannot map are left out and listed in `skipped`.
 *
 * `source` is a fleet (its `shard` is read, the first by default) or one database's MikroORM options (connected for
 * the read only). Open a fleet with the `entities` to use them on every shard, after `compareShardSchemas` has named
 * the shards whose schema differs.
 *
 * @example
 * ```ts
 * const reflected = await reflectEntities(orm, { shard: 's0' });
 * const Customer = reflected.entity('customer');
 * ```
 */
export async function reflectEntities(source: ShardedMikroORM | Partial<Options>, options: ReflectEntitiesOptions = {}): Promise<ReflectedEntities> {
  const { orm, shard, close } = openSource(source, options);
  try {
    const schema = await introspectTables(orm);
    const missing = (options.tables ?? []).filter(name => !schema.hasTable(name));
    if (missing.length > 0) {
      throw ShardingError.invalidOptions(
        `reflectEntities() \`tables\` names ${missing.map(name => `"${name}"`).join(', ')}, which ${shard === undefined ? 'the database' : `shard "${shard}"`} does not have (it has ${
          schema
            .getTables()
            .map(table => table.name)
            .join(', ') || 'no tables'
        }).`,
        missing,
      );
    }
    const wanted = options.tables && new Set(options.tables);
    const platform = orm.em.getPlatform() as AbstractSqlPlatform;
    const { definitions, skipped } = defineTables(schema, platform, orm.config.getNamingStrategy(), table => wanted?.has(table) ?? true);
    return reflected(shard, definitions, skipped);
  } finally {
    await close();
  }
}

function openSource(source: ShardedMikroORM | Partial<Options>, options: ReflectEntitiesOptions): { orm: MikroORM; shard?: ShardId; close(): Promise<void> } {
  if ('shardIds' in source) {
    const shard = options.shard ?? source.shardIds[0]!;
    fleetRunTargets(source.shardIds, { shards: [shard] }, 'reflectEntities() `shard`');
    return { orm: source.shard(shard), shard, close: async () => {} };
  }
  if (options.shard !== undefined) {
    throw ShardingError.invalidOptions(
      "reflectEntities() `shard` names a shard of a fleet; the source is one database's options. Pass the fleet, or leave `shard` out.",
      options.shard,
    );
  }
  const orm = new MikroORM({ ...source, entities: source.entities ?? [], discovery: { warnWhenNoEntities: false, ...source.discovery } });
  return { orm, close: () => orm.close() };
}

/** Builds the entity classes of the definitions, as the generated source does. */
function reflected(shard: ShardId | undefined, definitions: readonly EntityDefinition[], skipped: readonly SkippedTable[]): ReflectedEntities {
  const classes = new Map<string, ReflectedEntity>();
  for (const definition of definitions) {
    const schema = defineEntity({
      name: definition.name,
      tableName: definition.tableName,
      ...(definition.schema === undefined ? {} : { schema: definition.schema }),
      properties: Object.fromEntries(
        definition.properties.map(prop => [prop.name, prop.target === undefined ? build(prop) : () => build(prop, classes.get(prop.target!))]),
      ),
    });
    const entity = { [definition.name]: class extends schema.class {} }[definition.name]!;
    schema.setClass(entity);
    classes.set(definition.name, entity as ReflectedEntity);
  }
  const byTable = new Map(definitions.map(definition => [definition.tableName, classes.get(definition.name)!]));
  return {
    ...(shard === undefined ? {} : { shard }),
    entities: [...classes.values()],
    definitions,
    skipped,
    entity(table) {
      const entity = byTable.get(table);
      if (entity) return entity;
      const why = skipped.find(skip => skip.table === table);
      throw ShardingError.invalidOptions(
        why ? `table "${table}" was not mapped: ${why.reason}.` : `no table "${table}" was reflected (tables: ${[...byTable.keys()].join(', ')}).`,
        table,
      );
    },
  };
}

/** A property builder chain, called by name: the definitions are data. */
interface Chain {
  readonly [method: string]: (...args: unknown[]) => Chain;
}

function build(prop: PropertyDefinition, target?: ReflectedEntity): Chain {
  const builders = p as unknown as Chain;
  let chain = builders[prop.builder]!(...(prop.items ? [[...prop.items]] : target ? [target] : []));
  for (const [method, ...args] of prop.calls) chain = chain[method]!(...args);
  return chain;
}
