import { ReferenceKind, Utils, type EntityMetadata, type EntityProperty, type Platform } from '@mikro-orm/core';
import { traitsOf } from './platform-traits.ts';

/**
 * Whether a query's values can be bound to a prepared statement and still mean what MikroORM means by them. MikroORM
 * writes every value into the SQL text; a bound value is read as the type the database infers for its placeholder.
 * On PostgreSQL that differs for numbers: `score > 2.5` compares exactly as written, while `score > $1` makes `$1`
 * an integer and refuses 2.5 (and 3000000000, out of range). Both databases also cap the parameters of a statement.
 * `false` sends the query through MikroORM's way of writing values in.
 */
export function bindable(platform: Platform, meta: EntityMetadata, where: unknown, params: readonly unknown[]): boolean {
  const rules = rulesOf(platform);
  if (params.length > rules.maxParams) {
    return false;
  }
  return !rules.typedPlaceholders || !params.some(param => typeof param === 'number') || numbersFit(meta, where, undefined);
}

interface BindRules {
  /** Parameters one statement may have (SQLite's default SQLITE_MAX_VARIABLE_NUMBER, PostgreSQL's protocol limit). */
  readonly maxParams: number;
  /** Whether the database types a placeholder by its column (PostgreSQL) rather than by the value (SQLite). */
  readonly typedPlaceholders: boolean;
}

const SQLITE: BindRules = { maxParams: 32_766, typedPlaceholders: false };
const POSTGRESQL: BindRules = { maxParams: 65_535, typedPlaceholders: true };

function rulesOf(platform: Platform): BindRules {
  return traitsOf(platform).family === 'postgresql' ? POSTGRESQL : SQLITE;
}

/**
 * Walks a condition as MikroORM reads it (properties, operators, relations into their target entity) and checks
 * every number against the column it is compared with. Anything it cannot place (an unknown key, an entity
 * instance) counts as not fitting: the query then merely takes the slower, exact way.
 */
function numbersFit(meta: EntityMetadata, node: unknown, column: EntityProperty | undefined): boolean {
  if (typeof node === 'number') {
    return column !== undefined && fits(column, node);
  }
  if (Array.isArray(node)) {
    return node.every(item => numbersFit(meta, item, column));
  }
  if (node === null || typeof node !== 'object') {
    return true;
  }
  if (!Utils.isPlainObject(node)) {
    return node instanceof Date;
  }
  if (Object.getOwnPropertySymbols(node).length > 0) {
    // Raw SQL fragments: their values cannot be placed.
    return false;
  }
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('$')) {
      if (!numbersFit(meta, value, column)) {
        return false;
      }
      continue;
    }
    const prop = meta.properties[key as keyof typeof meta.properties] as EntityProperty | undefined;
    if (!prop) {
      return false;
    }
    const target = prop.kind === ReferenceKind.SCALAR ? undefined : prop.targetMeta;
    const fitting = target
      ? numbersFit(target, value, target.getPrimaryProps()[0])
      : numbersFit(meta, value, prop.kind === ReferenceKind.SCALAR ? prop : undefined);
    if (!fitting) {
      return false;
    }
  }
  return true;
}

const INT2 = new Set(['smallint', 'int2', 'tinyint']);
const INT4 = new Set(['int', 'integer', 'int4', 'mediumint', 'serial']);
const INT8 = new Set(['bigint', 'int8', 'bigserial']);
const EXACT = new Set(['numeric', 'decimal', 'double precision', 'double', 'float8']);
const FLOAT4 = new Set(['real', 'float4', 'float']);

/** Whether a number bound as the column's type reads as the same value the SQL literal would. */
function fits(column: EntityProperty, value: number): boolean {
  if (!Number.isFinite(value)) {
    return false;
  }
  const type = (column.columnTypes?.[0] ?? String(column.type ?? ''))
    .toLowerCase()
    .replace(/\(.*\)/, '')
    .trim();
  if (EXACT.has(type)) {
    return true;
  }
  if (!Number.isInteger(value)) {
    return false;
  }
  if (INT2.has(type)) {
    return value >= -32_768 && value <= 32_767;
  }
  if (INT4.has(type)) {
    return value >= -2_147_483_648 && value <= 2_147_483_647;
  }
  if (INT8.has(type)) {
    return Number.isSafeInteger(value);
  }
  return FLOAT4.has(type) && Math.abs(value) <= 16_777_216;
}
