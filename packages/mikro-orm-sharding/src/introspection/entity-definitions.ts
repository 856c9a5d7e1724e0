import { ReferenceKind, types, Type, UnknownType, type EntityProperty, type NamingStrategy } from '@mikro-orm/core';
import type { AbstractSqlPlatform, Column, DatabaseSchema, DatabaseTable } from '@mikro-orm/sql';
import { entityDeclarationOf, keepForeignKeys } from '../mikro-internals.ts';
import { traitsOf } from '../read/platform-traits.ts';

/** A literal argument of a property builder call. */
export type DefinitionValue = string | number | boolean;

/** One call of a property builder chain: the method and its arguments, `['length', 100]` for `.length(100)`. */
export type PropertyCall = readonly [method: string, ...args: DefinitionValue[]];

/** One property of a reflected entity, as a `p` builder chain: `p.<builder>(<target or items>).<calls>...`. */
export interface PropertyDefinition {
  readonly name: string;
  /** The `p` builder: a MikroORM type (`integer`, `string`, `decimal`, ...), `enum`, `manyToOne`, `oneToOne` or `oneToMany`. */
  readonly builder: string;
  /** The related entity's name, for a relation. */
  readonly target?: string;
  /** The values of an `enum`. */
  readonly items?: readonly (string | number)[];
  readonly calls: readonly PropertyCall[];
}

/** One reflected table: the entity `defineEntity` makes of it. */
export interface EntityDefinition {
  /** The entity (and class) name, from MikroORM's naming strategy. */
  readonly name: string;
  /** The table's name, exactly as the database has it. */
  readonly tableName: string;
  /** The table's schema, when it is not the database's default one (PostgreSQL). */
  readonly schema?: string;
  readonly properties: readonly PropertyDefinition[];
}

/** A table that was left out, and why. */
export interface SkippedTable {
  readonly table: string;
  readonly reason: string;
}

// SQLite accepts any type name and stores by affinity (https://www.sqlite.org/datatype3.html#determination_of_column_affinity);
// MikroORM knows the common names only, so the rest are read by the same rules.
const SQLITE_AFFINITY: readonly (readonly [RegExp, string])[] = [
  [/INT/i, 'integer'],
  [/CHAR|CLOB|TEXT/i, 'text'],
  [/REAL|FLOA|DOUB/i, 'double'],
];

/**
 * The entities MikroORM's own reading of each table gives (its entity generator's first step), as builder chains:
 * tables without a primary key or with a column of a type MikroORM does not map are skipped with the reason, and
 * foreign keys to tables left out become plain columns. Each many-to-one relation gets its one-to-many inverse
 * side where the name is free.
 */
export function defineTables(
  schema: DatabaseSchema,
  platform: AbstractSqlPlatform,
  naming: NamingStrategy,
  selected: (table: string) => boolean,
): { definitions: EntityDefinition[]; skipped: SkippedTable[] } {
  const skipped: SkippedTable[] = [];
  const tables = schema.getTables().filter(table => selected(table.name));
  const mapped = tables.filter(table => {
    const reason = unmappable(table, platform);
    if (reason) skipped.push({ table: table.name, reason });
    return reason === undefined;
  });
  const mappedNames = new Set(mapped.map(table => table.name));
  const primaryKeys = new Map(mapped.map(table => [table.name, table.getPrimaryKey()!.columnNames.join()]));
  const definitions: EntityDefinition[] = [];
  const names = new Set<string>();
  for (const table of mapped) {
    keepForeignKeys(table, fk => mappedNames.has(fk.referencedTableName.split('.').pop()!));
    const meta = entityDeclarationOf(table, naming, platform.getSchemaHelper()!);
    if (names.has(meta.className)) {
      skipped.push({ table: table.name, reason: `another table is already mapped to the entity name "${meta.className}"` });
      continue;
    }
    names.add(meta.className);
    definitions.push({
      name: meta.className,
      tableName: table.name,
      ...(table.schema && table.schema !== platform.getDefaultSchemaName() ? { schema: table.schema } : {}),
      properties: Object.values(meta.properties).map(prop => propertyOf(prop, table, naming, primaryKeys)),
    });
  }
  return { definitions: withInverseSides(definitions, naming), skipped };
}

function unmappable(table: DatabaseTable, platform: AbstractSqlPlatform): string | undefined {
  if (!table.hasPrimaryKey()) {
    return 'it has no primary key, and MikroORM tracks rows by primary key (add one, or read the table with raw SQL)';
  }
  const unknown = Type.getType(UnknownType);
  for (const column of table.getColumns()) {
    if (column.enumItems?.length) continue;
    if (column.mappedType === unknown && traitsOf(platform).family === 'sqlite') {
      const affinity = SQLITE_AFFINITY.find(([pattern]) => pattern.test(column.type));
      if (affinity) column.mappedType = platform.getMappedType(affinity[1]);
    }
    if (!supported(column)) {
      return `column "${column.name}" has type ${column.type}, which MikroORM does not map to a JavaScript type (pass \`tables\` without it, and read it with raw SQL)`;
    }
  }
  return undefined;
}

function supported(column: Column): boolean {
  return Object.entries(types).some(([name, type]) => name !== 'unknown' && name !== 'array' && name !== 'enum' && column.mappedType.constructor === type);
}

function propertyOf(prop: EntityProperty, table: DatabaseTable, naming: NamingStrategy, primaryKeys: ReadonlyMap<string, string>): PropertyDefinition {
  const calls: PropertyCall[] = [];
  const columns = prop.fieldNames;
  if (prop.kind === ReferenceKind.MANY_TO_ONE || prop.kind === ReferenceKind.ONE_TO_ONE) {
    if (prop.kind === ReferenceKind.ONE_TO_ONE) calls.push(['owner']);
    if (columns.length > 1) calls.push(['fieldNames', ...columns]);
    else if (columns[0] !== naming.joinKeyColumnName(prop.name, prop.referencedColumnNames[0])) calls.push(['fieldName', columns[0]!]);
    const referenced = prop.referencedTableName.split('.').pop()!;
    if (primaryKeys.get(referenced) !== prop.referencedColumnNames.join()) calls.push(['referencedColumnNames', ...prop.referencedColumnNames]);
    if (prop.primary) calls.push(['primary']);
    if (prop.nullable && !prop.primary) calls.push(['nullable']);
    const constraint = Object.values(table.getForeignKeys()).find(fk => fk.columnNames.join() === columns.join())?.constraintName;
    if (constraint) calls.push(['foreignKeyName', constraint]);
    if (prop.updateRule) calls.push(['updateRule', prop.updateRule]);
    if (prop.deleteRule) calls.push(['deleteRule', prop.deleteRule]);
    // MikroORM indexes foreign keys on some databases (SQLite); a table without that index keeps none.
    calls.push(...(typeof prop.index === 'string' || typeof prop.unique === 'string' ? indexCalls(prop) : [['index', false] as const]));
    return { name: prop.name, builder: prop.kind === ReferenceKind.ONE_TO_ONE ? 'oneToOne' : 'manyToOne', target: prop.type, calls };
  }
  const column = table.getColumn(columns[0]!)!;
  if (columns[0] !== naming.propertyToColumnName(prop.name)) calls.push(['fieldName', columns[0]!]);
  const builder = prop.enum && prop.items ? 'enum' : prop.type;
  if (prop.nativeEnumName) calls.push(['nativeEnumName', prop.nativeEnumName]);
  if (column.length && ['string', 'character', 'datetime', 'time'].includes(builder)) calls.push(['length', column.length]);
  // SQLite's introspection keeps the precision in the type name only: numeric(10,2).
  const [, precision = column.precision, scale = column.scale] = /\((\d+)\s*(?:,\s*(\d+))?\)/.exec(column.type)?.map(Number) ?? [];
  if (builder === 'decimal' && precision) calls.push(['precision', precision], ['scale', scale ?? 0]);
  if (platformColumnTypeDiffers(column, builder)) calls.push(['columnType', column.type]);
  if (prop.primary) {
    calls.push(['primary']);
    if (
      !column.autoincrement &&
      table.getPrimaryKey()!.columnNames.length === 1 &&
      ['integer', 'smallint', 'bigint', 'tinyint', 'mediumint'].includes(builder)
    ) {
      calls.push(['autoincrement', false]);
    }
  } else if (prop.nullable) {
    calls.push(['nullable']);
  }
  if (prop.default !== undefined && prop.default !== null) {
    calls.push(['default', prop.default as DefinitionValue]);
    // SQLite writes boolean defaults as 0 and 1: keep the database's text, or MikroORM would see a changed default.
    if (typeof prop.default === 'boolean' && prop.defaultRaw !== String(prop.default)) calls.push(['defaultRaw', prop.defaultRaw!]);
  } else if (prop.defaultRaw !== undefined && prop.defaultRaw !== 'null' && !column.autoincrement) calls.push(['defaultRaw', prop.defaultRaw]);
  calls.push(...indexCalls(prop));
  return { name: prop.name, builder, ...(builder === 'enum' ? { items: prop.items! } : {}), calls };
}

// A type MikroORM knows under another name than the column's (SQLite's REAL read as a double): keep the column's.
function platformColumnTypeDiffers(column: Column, builder: string): boolean {
  return builder === 'double' && !/^(double|float8|double precision)$/i.test(column.type);
}

function indexCalls(prop: EntityProperty): PropertyCall[] {
  return [
    ...(typeof prop.unique === 'string' ? [['unique', prop.unique] as const] : []),
    ...(typeof prop.index === 'string' ? [['index', prop.index] as const] : []),
  ];
}

function withInverseSides(definitions: EntityDefinition[], naming: NamingStrategy): EntityDefinition[] {
  const inverse = new Map<string, PropertyDefinition[]>();
  for (const owner of definitions) {
    const relations = owner.properties.filter(prop => prop.builder === 'manyToOne');
    for (const prop of relations) {
      const target = definitions.find(definition => definition.name === prop.target)!;
      const several = relations.filter(other => other.target === prop.target).length > 1;
      const name = several ? `${prop.name}${owner.name}Collection` : naming.inverseSideName(owner.name, prop.name, ReferenceKind.ONE_TO_MANY);
      const taken = [...target.properties, ...(inverse.get(target.name) ?? [])].some(existing => existing.name === name);
      if (taken) continue;
      inverse.set(target.name, [...(inverse.get(target.name) ?? []), { name, builder: 'oneToMany', target: owner.name, calls: [['mappedBy', prop.name]] }]);
    }
  }
  return definitions.map(definition => ({ ...definition, properties: [...definition.properties, ...(inverse.get(definition.name) ?? [])] }));
}
