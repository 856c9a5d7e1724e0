import { Reference, ReferenceKind, type Dictionary, type EntityMetadata, type EntityProperty, type Platform } from '@mikro-orm/core';
import { ShardingError } from './errors.ts';
import { entityHelper } from './mikro-internals.ts';
import type { SortKey, ValueKind } from './merge.ts';

/** One key of an `orderBy`, flattened: `{ author: { name: 'desc' } }` is the path `['author', 'name']`. */
export interface OrderTerm {
  readonly path: readonly string[];
  readonly direction: 1 | -1;
  readonly nulls: 'first' | 'last' | undefined;
}

/** Flattens MikroORM's `orderBy` (an object, or an array of them; `'asc'`, `'DESC NULLS LAST'`, `1`, `-1`). */
export function orderTerms(orderBy: unknown): OrderTerm[] {
  const terms: OrderTerm[] = [];
  const visit = (value: unknown, path: string[]): void => {
    if (Array.isArray(value)) {
      value.forEach(item => visit(item, path));
    } else if (value !== null && typeof value === 'object') {
      if (Object.getOwnPropertySymbols(value).length > 0) {
        throw ShardingError.unsupportedQuery(
          'orderBy has a raw SQL key, which shard results cannot be merged by; order by entity properties, or query one shard with `{ shard }`.',
          path.join('.'),
        );
      }
      for (const [key, inner] of Object.entries(value)) {
        visit(inner, [...path, key]);
      }
    } else if (value !== undefined && path.length > 0) {
      terms.push({ path, ...parseDirection(value, path) });
    }
  };
  visit(orderBy, []);
  return terms;
}

function parseDirection(value: unknown, path: readonly string[]): Pick<OrderTerm, 'direction' | 'nulls'> {
  if (value === 1 || value === -1) {
    return { direction: value, nulls: undefined };
  }
  const text = String(value).trim().toLowerCase().replace(/\s+/g, ' ');
  const match = /^(asc|desc)(?: nulls (first|last))?$/.exec(text);
  if (!match) {
    throw ShardingError.unsupportedQuery(`orderBy "${path.join('.')}" has direction ${JSON.stringify(value)}; use 'asc', 'desc' or their 'nulls first/last' forms.`, value);
  }
  return { direction: match[1] === 'asc' ? 1 : -1, nulls: match[2] as 'first' | 'last' | undefined };
}

/** Whether the database sorts NULL above every value (PostgreSQL, Oracle) or below (SQLite, MySQL, MSSQL). */
export function nullsSortHigh(platform: Platform): boolean {
  return !platform.sortsNullsLowest();
}

function resolveNulls(term: OrderTerm, nullsHigh: boolean): 'first' | 'last' {
  return term.nulls ?? ((term.direction === 1) === nullsHigh ? 'last' : 'first');
}

/** How a property's values compare. */
function kindOf(prop: EntityProperty): ValueKind {
  if (prop.kind !== ReferenceKind.SCALAR && prop.targetMeta) {
    const pk = prop.targetMeta.getPrimaryProps()[0];
    return pk ? kindOf(pk) : 'unknown';
  }
  const type = `${prop.type ?? ''} ${prop.columnTypes?.[0] ?? ''}`.toLowerCase();
  if (/decimal|numeric/.test(type)) {
    return 'decimal';
  }
  if (/bigint|int8/.test(type) || prop.runtimeType === 'bigint') {
    return 'bigint';
  }
  switch (prop.runtimeType) {
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'Date':
      return 'date';
    case 'string':
      return 'string';
    default:
      return 'unknown';
  }
}

/**
 * Sort keys that read raw database rows, or `undefined` when a term is not a single-column property of the root
 * entity (then rows cannot be merged before they become entities, and the caller merges entities instead).
 */
export function rowSortKeys(meta: EntityMetadata, terms: readonly OrderTerm[], nullsHigh: boolean): SortKey<Dictionary>[] | undefined {
  const keys: SortKey<Dictionary>[] = [];
  for (const term of terms) {
    const prop = term.path.length === 1 ? meta.properties[term.path[0] as keyof typeof meta.properties] : undefined;
    const isColumn = prop && !prop.formula && prop.fieldNames?.length === 1 && (prop.kind === ReferenceKind.SCALAR || prop.kind === ReferenceKind.MANY_TO_ONE || (prop.kind === ReferenceKind.ONE_TO_ONE && prop.owner));
    if (!prop || !isColumn) {
      return undefined;
    }
    const field = prop.fieldNames[0]!;
    keys.push({ read: row => row[field], direction: term.direction, nulls: resolveNulls(term, nullsHigh), kind: kindOf(prop) });
  }
  return keys;
}

/** Sort keys that read managed entities, following relation paths (`author.name`). */
export function entitySortKeys(meta: EntityMetadata, terms: readonly OrderTerm[], nullsHigh: boolean): SortKey<object>[] {
  return terms.map(term => {
    const props: EntityProperty[] = [];
    let current: EntityMetadata | undefined = meta;
    for (const name of term.path) {
      const prop: EntityProperty | undefined = current?.properties[name as keyof typeof current.properties];
      if (!prop) {
        throw ShardingError.unsupportedQuery(
          `orderBy "${term.path.join('.')}" of ${meta.className} is not an entity property, so shard results cannot be merged by it; order by properties only.`,
          term.path.join('.'),
        );
      }
      props.push(prop);
      current = prop.targetMeta;
    }
    const last = props[props.length - 1]!;
    return { read: (entity: object) => readPath(entity, props), direction: term.direction, nulls: resolveNulls(term, nullsHigh), kind: kindOf(last) };
  });
}

function readPath(entity: object, props: readonly EntityProperty[]): unknown {
  let value: unknown = entity;
  for (const prop of props) {
    value = Reference.unwrapReference((value as Dictionary)[prop.name]);
    if (value === null || value === undefined) {
      return value;
    }
  }
  const last = props[props.length - 1]!;
  return last.kind === ReferenceKind.SCALAR || last.kind === ReferenceKind.EMBEDDED ? value : entityHelper(value as object).getPrimaryKey();
}

/** The relation paths an `orderBy` walks through, for populating them before merging entities. */
export function relationPaths(terms: readonly OrderTerm[]): string[] {
  return [...new Set(terms.filter(term => term.path.length > 1).map(term => term.path.slice(0, -1).join('.')))];
}
