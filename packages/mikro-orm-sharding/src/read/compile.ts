import { ReferenceKind, type EntityMetadata } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { bindable } from './bind-values.ts';
import { repeatsRoots } from './root-rows.ts';

/** SQL and its parameters, ready to run on any shard of the same driver and schema. */
export interface CompiledQuery {
  readonly sql: string;
  readonly params: unknown[];
  /** The values must be written into the SQL, as MikroORM does: bound, the database would read them otherwise. */
  readonly inline?: boolean;
}

/** The parts of a query that decide its SQL. */
interface QueryParts {
  readonly where: unknown;
  readonly orderBy?: unknown;
  readonly limit?: number | undefined;
  readonly offset?: number | undefined;
  /** Properties to select instead of every column. */
  readonly fields?: readonly string[];
}

/** A compiled statement of one query shape: where each parameter comes from among the query's values. */
interface ShapeStatement {
  readonly sql: string;
  readonly slots: readonly number[];
}

const MAX_SHAPES = 500;
const shapes = new WeakMap<object, Map<string, ShapeStatement | null>>();
const OPERATORS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$like', '$ilike']);

/**
 * A query's SQL, built once per query shape. Queries that differ only in their values (`score >= 17` and
 * `score >= 905`) share one statement; only the parameters are new. Measured, building a QueryBuilder per query
 * was the largest cost of a fan-out. Shapes this cannot prove safe are built with the QueryBuilder every time.
 */
export function compiledQuery(fork: SqlEntityManager, meta: EntityMetadata, kind: 'select' | 'count', parts: QueryParts, dialect: string): CompiledQuery {
  const compiled = compileShape(fork, meta, kind, parts, dialect);
  return bindable(fork.getPlatform(), meta, parts.where, compiled.params) ? compiled : { ...compiled, inline: true };
}

function compileShape(fork: SqlEntityManager, meta: EntityMetadata, kind: 'select' | 'count', parts: QueryParts, dialect: string): CompiledQuery {
  const shape = shapeOf(meta, parts.where);
  if (!shape) {
    return build(fork, meta, kind, parts);
  }
  const limited = kind === 'select' && parts.limit !== undefined;
  const offsetted = limited && parts.offset !== undefined && parts.offset > 0;
  const select = kind === 'select' ? `${JSON.stringify(parts.orderBy ?? null)}\0${parts.fields?.join(',') ?? '*'}\0${limited}\0${offsetted}` : '';
  const key = `${dialect}\0${kind}\0${meta.className}\0${shape.key}\0${select}`;
  let cache = shapes.get(fork.config);
  if (!cache) {
    cache = new Map();
    shapes.set(fork.config, cache);
  }
  let statement = cache.get(key);
  if (statement === undefined) {
    statement = prepareShape(fork, meta, kind, parts, shape, limited, offsetted);
    if (cache.size >= MAX_SHAPES) {
      cache.clear();
    }
    cache.set(key, statement);
  }
  if (statement === null) {
    return build(fork, meta, kind, parts);
  }
  const values = limited ? [...shape.values, parts.limit, ...(offsetted ? [parts.offset] : [])] : shape.values;
  return { sql: statement.sql, params: statement.slots.map(slot => values[slot]) };
}

function build(fork: SqlEntityManager, meta: EntityMetadata, kind: 'select' | 'count', parts: QueryParts): CompiledQuery {
  const qb = fork.createQueryBuilder(meta.class);
  if (kind === 'count') {
    // Through a to-many relation rows repeat their root: MikroORM's `em.count` then counts distinct roots.
    qb.count(undefined, repeatsRoots(meta, parts.where));
  } else {
    qb.select((parts.fields ?? '*') as never);
  }
  if (parts.where !== undefined && parts.where !== null) {
    qb.where(parts.where as never);
  }
  if (kind === 'select' && parts.orderBy !== undefined) {
    qb.orderBy(parts.orderBy as never);
  }
  if (kind === 'select' && parts.limit !== undefined) {
    qb.limit(parts.limit, parts.offset);
  }
  const { sql, params } = qb.toQuery();
  return { sql, params: [...params] };
}

/**
 * Compiles the shape with a unique stand-in for every value and finds each stand-in among the parameters. Any
 * doubt (a parameter that is no stand-in, a stand-in that vanished into the SQL) makes the shape uncacheable.
 */
function prepareShape(
  fork: SqlEntityManager,
  meta: EntityMetadata,
  kind: 'select' | 'count',
  parts: QueryParts,
  shape: Shape,
  limited: boolean,
  offsetted: boolean,
): ShapeStatement | null {
  const standIns = shape.values.map((value, i) => (typeof value === 'number' ? STAND_IN_NUMBER + i : `${STAND_IN_TEXT}${i}`));
  let next = 0;
  const where = mapLeaves(parts.where, () => standIns[next++]);
  const limitStandIn = STAND_IN_NUMBER + standIns.length;
  const offsetStandIn = limitStandIn + 1;
  const compiled = build(fork, meta, kind, {
    where,
    orderBy: parts.orderBy,
    fields: parts.fields,
    limit: limited ? limitStandIn : undefined,
    offset: offsetted ? offsetStandIn : undefined,
  });
  const index = new Map<unknown, number>(standIns.map((standIn, i) => [standIn, i]));
  if (limited) {
    index.set(limitStandIn, standIns.length);
  }
  if (offsetted) {
    index.set(offsetStandIn, standIns.length + 1);
  }
  const slots = compiled.params.map(param => index.get(param));
  if (slots.some(slot => slot === undefined) || new Set(slots).size !== index.size) {
    return null;
  }
  return { sql: compiled.sql, slots: slots as number[] };
}

const STAND_IN_NUMBER = 7_340_021_234_567;
const STAND_IN_TEXT = '\u0000mikro-orm-sharding:';

interface Shape {
  readonly key: string;
  readonly values: readonly (number | string)[];
}

/**
 * The shape of a plain condition on scalar columns (values replaced by `?`) and its values, or undefined for
 * anything else: relations, custom types, dates, booleans and nulls are left to the QueryBuilder every time.
 */
function shapeOf(meta: EntityMetadata, where: unknown): Shape | undefined {
  const values: (number | string)[] = [];
  const walk = (node: unknown, column: boolean): string | undefined => {
    if (typeof node === 'number' || typeof node === 'string') {
      if (!column || (typeof node === 'number' && !Number.isFinite(node))) {
        return undefined;
      }
      values.push(node);
      return '?';
    }
    if (Array.isArray(node)) {
      const items = node.map(item => walk(item, column));
      return items.includes(undefined) ? undefined : `[${items.join(',')}]`;
    }
    if (node === null || typeof node !== 'object' || Object.getPrototypeOf(node) !== Object.prototype) {
      return undefined;
    }
    const entries: string[] = [];
    for (const [key, value] of Object.entries(node)) {
      let inner: string | undefined;
      if (key === '$and' || key === '$or') {
        inner = !column && Array.isArray(value) ? walk(value, false) : undefined;
      } else if (key.startsWith('$')) {
        inner = column && OPERATORS.has(key) ? walk(value, true) : undefined;
      } else {
        const prop = column ? undefined : meta.properties[key as keyof typeof meta.properties];
        const plainColumn = prop && prop.kind === ReferenceKind.SCALAR && !prop.customType && prop.fieldNames?.length === 1 && !prop.formula;
        inner = plainColumn ? walk(value, true) : undefined;
      }
      if (inner === undefined) {
        return undefined;
      }
      entries.push(`${JSON.stringify(key)}:${inner}`);
    }
    return `{${entries.join(',')}}`;
  };
  const key = where === undefined || where === null ? '{}' : walk(where, false);
  return key === undefined ? undefined : { key, values };
}

/** A copy of a condition with every leaf value replaced, in the order `shapeOf` collected them. */
function mapLeaves(node: unknown, replace: () => unknown): unknown {
  if (typeof node === 'number' || typeof node === 'string') {
    return replace();
  }
  if (Array.isArray(node)) {
    return node.map(item => mapLeaves(item, replace));
  }
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, mapLeaves(value, replace)]));
  }
  return node;
}
