import { Reference, ReferenceKind, type Dictionary, type EntityMetadata, type EntityProperty } from '@mikro-orm/core';
import { ShardingError } from '../errors/errors.ts';
import { entityHelper } from '../mikro-internals.ts';
import type { PlatformTraits } from './platform-traits.ts';
import type { SortKey, ValueKind } from './merge.ts';

/** One key of an `orderBy`, flattened: `{ author: { name: 'desc' } }` is the path `['author', 'name']`. */
export interface OrderTerm {
  readonly path: readonly string[];
  readonly direction: 1 | -1;
  readonly nulls: 'first' | 'last' | undefined;
}

/**
 * Flattens MikroORM's `orderBy` (an object, or an array of them; `'asc'`, `'DESC NULLS LAST'`, `1`, `-1`), or
 * undefined for a direction MikroORM refuses (it then says so itself). A raw SQL key cannot be merged by: it
 * throws `UNMERGEABLE_QUERY`.
 */
export function orderTerms(orderBy: unknown, entity: string): OrderTerm[] | undefined {
  const terms: OrderTerm[] = [];
  let valid = true;
  const visit = (value: unknown, path: string[]): void => {
    if (Array.isArray(value)) {
      value.forEach(item => visit(item, path));
    } else if (value !== null && typeof value === 'object') {
      if (Object.getOwnPropertySymbols(value).length > 0) {
        throw ShardingError.unmergeableQuery(
          entity,
          `orderBy${path.length > 0 ? ` "${path.join('.')}"` : ''} has a raw SQL key, which the merge cannot evaluate; order by a property holding the value.`,
          path.join('.'),
        );
      }
      for (const [key, inner] of Object.entries(value)) {
        visit(inner, [...path, key]);
      }
    } else if (value !== undefined && path.length > 0) {
      const direction = parseDirection(value);
      if (direction) {
        terms.push({ path, ...direction });
      } else {
        valid = false;
      }
    }
  };
  visit(orderBy, []);
  return valid ? terms : undefined;
}

function parseDirection(value: unknown): Pick<OrderTerm, 'direction' | 'nulls'> | undefined {
  if (value === 1 || value === -1) {
    return { direction: value, nulls: undefined };
  }
  if (typeof value !== 'string') {
    return undefined;
  }
  const match = /^(asc|desc)(?: nulls (first|last))?$/.exec(value.trim().toLowerCase().replace(/\s+/g, ' '));
  return match ? { direction: match[1] === 'asc' ? 1 : -1, nulls: match[2] as 'first' | 'last' | undefined } : undefined;
}

/** What the merge must know of the databases whose rows it compares (see `traitsOf`). */
export type KeyDialect = Pick<PlatformTraits, 'nullsHigh' | 'roundsBigints'>;

function resolveNulls(term: OrderTerm, dialect: KeyDialect): 'first' | 'last' {
  return term.nulls ?? ((term.direction === 1) === dialect.nullsHigh ? 'last' : 'first');
}

const EXACT_LIMIT = 2n ** 53n;

/**
 * A bigint key as the driver read it. Beyond 2^53 a rounding driver may have made two values equal, or swapped
 * them; the database ordered them exactly, the merge cannot: refused rather than answered in a wrong order.
 */
function exactBigint<Row>(read: (row: Row) => unknown, entity: string, path: string): (row: Row) => unknown {
  return row => {
    const value = read(row);
    if (
      (typeof value === 'number' && !Number.isSafeInteger(value) && Number.isFinite(value)) ||
      (typeof value === 'bigint' && (value >= EXACT_LIMIT || value <= -EXACT_LIMIT))
    ) {
      throw ShardingError.unmergeableQuery(
        entity,
        `orderBy "${path}" met the value ${String(value)}, 2^53 or more in size: this driver reads such integers rounded, so rows cannot be merged in their exact order.`,
        value,
      );
    }
    return value;
  };
}

function keyOf<Row>(read: (row: Row) => unknown, term: OrderTerm, prop: EntityProperty, dialect: KeyDialect, entity: string): SortKey<Row> {
  const kind = kindOf(prop);
  return {
    read: kind === 'bigint' && dialect.roundsBigints ? exactBigint(read, entity, term.path.join('.')) : read,
    direction: term.direction,
    nulls: resolveNulls(term, dialect),
    kind,
  };
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
export function rowSortKeys(meta: EntityMetadata, terms: readonly OrderTerm[], dialect: KeyDialect): SortKey<Dictionary>[] | undefined {
  const keys: SortKey<Dictionary>[] = [];
  for (const term of terms) {
    const prop = term.path.length === 1 ? meta.properties[term.path[0] as keyof typeof meta.properties] : undefined;
    const isColumn =
      prop &&
      !prop.formula &&
      prop.fieldNames?.length === 1 &&
      (prop.kind === ReferenceKind.SCALAR || prop.kind === ReferenceKind.MANY_TO_ONE || (prop.kind === ReferenceKind.ONE_TO_ONE && prop.owner));
    if (!prop || !isColumn) {
      return undefined;
    }
    const field = prop.fieldNames[0]!;
    keys.push(keyOf(row => row[field], term, prop, dialect, meta.className));
  }
  return keys;
}

/**
 * The properties an order term walks, or undefined when it names something that is not one (MikroORM refuses most
 * such keys itself). A path through a to-many collection throws `UNMERGEABLE_QUERY`: one database orders by the
 * joined children's rows, and which child row places a parent is not something the merge can reproduce.
 */
export function termProps(meta: EntityMetadata, term: OrderTerm): EntityProperty[] | undefined {
  const props: EntityProperty[] = [];
  let current: EntityMetadata | undefined = meta;
  for (const name of term.path) {
    const prop: EntityProperty | undefined = current?.properties[name as keyof typeof current.properties];
    if (!prop) {
      return undefined;
    }
    if (prop.kind === ReferenceKind.ONE_TO_MANY || prop.kind === ReferenceKind.MANY_TO_MANY) {
      throw ShardingError.unmergeableQuery(
        meta.className,
        `orderBy "${term.path.join('.')}" orders through the to-many collection "${prop.name}", which one database does by the joined child rows; the merge cannot reproduce that order.`,
        term.path.join('.'),
      );
    }
    props.push(prop);
    current = prop.kind === ReferenceKind.SCALAR ? undefined : prop.targetMeta;
  }
  return props;
}

/** Sort keys that read managed entities, following relation paths (`author.name`); every term must be valid. */
export function entitySortKeys(meta: EntityMetadata, terms: readonly OrderTerm[], dialect: KeyDialect): SortKey<object>[] {
  return terms.map(term => {
    const props = termProps(meta, term)!;
    const last = props[props.length - 1]!;
    return keyOf((entity: object) => readPath(entity, props), term, last, dialect, meta.className);
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

/**
 * What must be populated to read the order keys from entities: relations an order path walks through, an inverse
 * one-to-one (its key is on the other side) and lazy properties. Empty when a plain `em.find` loads every key.
 */
export function keyLoadPaths(meta: EntityMetadata, terms: readonly OrderTerm[]): string[] {
  const paths = new Set<string>();
  for (const term of terms) {
    const props = termProps(meta, term)!;
    const last = props[props.length - 1]!;
    // Through relations (not embeddables, which load with their entity): up to the last relation walked through.
    const through = props.slice(0, -1).findLastIndex(prop => prop.kind !== ReferenceKind.SCALAR && prop.kind !== ReferenceKind.EMBEDDED);
    if (through >= 0) {
      paths.add(term.path.slice(0, through + 1).join('.'));
    }
    if (last.lazy || (last.kind === ReferenceKind.ONE_TO_ONE && !last.owner)) {
      paths.add(term.path.join('.'));
    }
  }
  return [...paths];
}
