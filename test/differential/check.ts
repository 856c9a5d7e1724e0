import { helper, wrap, type EntityManager } from '@mikro-orm/core';
import { ShardingError, shardFailureOf, type ShardedEntityManager } from 'mikro-orm-sharding';
import type { Pair } from './fleets.ts';
import { Leaf, Rec } from './model.ts';
import type { Query } from './queries.ts';
import type { RecRow } from './data.ts';

type Answer = { readonly value: unknown } | { readonly error: string; readonly code?: string; readonly message: string };

/**
 * Runs one query through the sharded entity manager and through plain MikroORM on the reference database, and
 * describes how the answers differ (undefined when they agree). A refusal agrees only when it is the documented
 * one the query expects.
 */
export async function disagreement(pair: Pair, query: Query, driver: 'sqlite' | 'postgresql', rows: readonly RecRow[]): Promise<string | undefined> {
  const em = pair.sharded.em.fork();
  const sharded = await answer(() => run(em, query, query.options), query, em, pair.shardOfRec);
  if ('error' in sharded && sharded.error === 'ShardingError' && sharded.code !== 'SHARD_OPERATION_FAILED') {
    const allowed = sharded.code === query.refusal || (sharded.code === 'UNMERGEABLE_QUERY' && mayMeetRoundedBigints(query, driver, rows));
    return allowed ? undefined : `refused with ${sharded.code}: ${sharded.message}`;
  }
  // A fleet that prunes by the key may send such a query to the one shard that can hold its rows, which answers it
  // exactly, as one database does: then the answer must agree instead.
  // A lookup by primary key is never merged: each candidate shard answers it as one database does.
  if (query.refusal && !('error' in sharded) && !pair.prunes && !byPrimaryKey(query)) {
    // (An error MikroORM raises first, an empty findOne condition, must still be MikroORM's: compared below.)
    return `answered, but must be refused with ${query.refusal}: ${show(sharded)}`;
  }
  // One SQLite database rejects any offset without a limit (a syntax error), which the fleet answers as if the
  // limit were `-1`, SQLite's way of saying none; with an offset the database refuses too, both refuse.
  const unlimited = driver === 'sqlite' && query.options.offset !== undefined && query.options.limit === undefined;
  const plain = await answer(() => run(pair.plain.em.fork(), query, unlimited ? { ...query.options, limit: -1 } : query.options), query);
  if (unlimited && 'error' in sharded && 'error' in plain) {
    return undefined;
  }
  if (unlimited && 'error' in sharded && pair.prunes) {
    // Pruned to one shard, the query is that SQLite database's as is: it must refuse it as the plain one does.
    const refused = await answer(() => run(pair.plain.em.fork(), query, query.options), query);
    return comparable(sharded) === comparable(refused) ? undefined : `sharded: ${show(sharded)}\n  plain:   ${show(refused)}`;
  }
  if (driver === 'postgresql' && Number(query.options.offset) < 0 && [sharded, plain].some(negativeOffsetRefused)) {
    // PostgreSQL refuses a negative OFFSET only if its plan runs the LIMIT node: a hash join over an empty side
    // skips it, so one database answers or refuses by its plan and statistics, and so does each shard.
    return undefined;
  }
  // Errors agree by class: their messages quote SQL, which the merged path writes otherwise.
  return comparable(sharded) === comparable(plain) ? undefined : `sharded: ${show(sharded)}\n  plain:   ${show(plain)}`;
}

/**
 * SQLite's driver reads integers beyond 2^53 rounded; the library refuses to merge by such a value rather than risk
 * a wrong order (documented). A query ordering records by `big` may meet one when the data holds one.
 */
function mayMeetRoundedBigints(query: Query, driver: string, rows: readonly RecRow[]): boolean {
  const limit = 2n ** 53n;
  return (
    driver === 'sqlite' &&
    query.entity === 'Rec' &&
    orderKeys(query).includes('big') &&
    rows.some(row => row.big !== null && (row.big >= limit || row.big <= -limit))
  );
}

/** Each call gets its own copy of the condition and options: MikroORM rewrites conditions in place. */
function run(target: ShardedEntityManager | EntityManager, query: Query, options: object): Promise<unknown> {
  // Both have MikroORM's signatures; one view of them keeps the calls below simple.
  const em = target as EntityManager;
  const entity = (query.entity === 'Rec' ? Rec : Leaf) as typeof Rec;
  const where = structuredClone(query.where) as never;
  const copy = structuredClone(options) as never;
  switch (query.op) {
    case 'find':
      return em.find(entity, where, copy);
    case 'findAndCount':
      return em.findAndCount(entity, where, copy);
    case 'count':
      return em.count(entity, where);
    case 'findOne':
      return em.findOne(entity, where, copy);
  }
}

async function answer(call: () => Promise<unknown>, query: Query, sharded?: ShardedEntityManager, shardOfRec?: (id: number) => string): Promise<Answer> {
  let result: unknown;
  try {
    result = await call();
  } catch (error) {
    return errorAnswer(error);
  }
  if (sharded) {
    // A leaf's id is its record's id times ten plus its index (see data.ts): it may be loaded without its record.
    const misplaced = entitiesOf(result).find(
      entity => sharded.shardOf(entity) !== shardOfRec!(entity instanceof Leaf ? Math.floor(entity.id / 10) : (entity as Rec).id),
    );
    if (misplaced) {
      return { error: 'misplaced', message: `${misplaced.constructor.name} ${json(helper(misplaced).getPrimaryKey())} is not managed by its shard's fork` };
    }
  }
  return { value: shape(result, query) };
}

function errorAnswer(error: unknown): Answer {
  if (error instanceof ShardingError) {
    return { error: 'ShardingError', code: error.code, message: error.message };
  }
  const e = error as Error;
  // A shard's error is MikroORM's own; its message ends naming the shard, which one database's does not.
  const message = String(e?.message ?? e);
  return { error: e?.constructor?.name ?? typeof e, message: shardFailureOf(error) ? message.replace(/ \(shard [^)]*\)$/, '') : message };
}

function entitiesOf(result: unknown): object[] {
  if (Array.isArray(result)) {
    return result.flatMap(entitiesOf);
  }
  return result instanceof Rec || result instanceof Leaf ? [result] : [];
}

/** What the user sees: MikroORM's serialisation of each entity; lists as the comparison mode allows. */
function shape(result: unknown, query: Query): unknown {
  switch (query.op) {
    case 'count':
      return result;
    case 'findOne':
      return result === null ? null : serialize(result as object, query);
    case 'findAndCount': {
      const [list, total] = result as [object[], number];
      return [shapeList(list, query), total];
    }
    case 'find':
      return shapeList(result as object[], query);
  }
}

function shapeList(result: readonly object[], query: Query): unknown {
  const rows = (result as object[]).map(entity => serialize(entity, query));
  if (query.compare === 'exact') {
    return rows;
  }
  const set = rows.map(row => json(row)).sort();
  if (query.compare === 'set') {
    return set;
  }
  const keys = orderKeys(query);
  return { set, keys: rows.map(row => keys.map(key => (row as Record<string, unknown>)[key])) };
}

function orderKeys(query: Query): string[] {
  const list = Array.isArray(query.options.orderBy) ? query.options.orderBy : [query.options.orderBy ?? {}];
  return (list as object[]).flatMap(entry => Object.keys(entry));
}

function serialize(entity: object, query: Query): unknown {
  const object = wrap(entity).toObject() as Record<string, unknown>;
  if (Array.isArray(object.leaves) && !query.childOrder) {
    object.leaves = [...object.leaves].sort((a, b) => (a as { id: number }).id - (b as { id: number }).id);
  }
  return object;
}

function negativeOffsetRefused(answer: Answer): boolean {
  return 'error' in answer && answer.message.includes('OFFSET must not be negative');
}

function comparable(answer: Answer): string {
  return 'error' in answer ? `error ${answer.error}` : json(answer.value);
}

function show(answer: Answer): string {
  return 'error' in answer ? `${answer.error}${answer.code ? ` ${answer.code}` : ''}: ${answer.message.slice(0, 300)}` : json(answer.value);
}

/** JSON that keeps what JSON loses: bigints, dates, undefined. */
export function json(value: unknown): string {
  return JSON.stringify(value, function (key, v) {
    const raw = (this as Record<string, unknown>)[key];
    if (typeof raw === 'bigint') {
      return `${raw}n`;
    }
    if (raw instanceof Date) {
      return `Date(${Number.isNaN(raw.getTime()) ? 'invalid' : raw.toISOString()})`;
    }
    return v === undefined ? '<undefined>' : v;
  });
}

/** `findOne` by the primary key alone (`{ id: 19 }`): the id chooser's shards answer it one after another, unmerged. */
function byPrimaryKey(query: Query): boolean {
  const where = query.where as Record<string, unknown> | undefined;
  return (
    query.op === 'findOne' && where !== null && typeof where === 'object' && Object.keys(where).length === 1 && ['number', 'string'].includes(typeof where.id)
  );
}
