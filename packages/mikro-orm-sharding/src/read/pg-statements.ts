import type { CompiledQuery } from './compile.ts';
import type { Method } from './execute.ts';

/** The part of `pg`'s Pool API used here. */
export interface PgPool {
  readonly ending: boolean;
  readonly totalCount: number;
  query(config: { name: string; text: string; values: unknown[]; rowMode?: 'array' }): Promise<{ rows: unknown[] }>;
}

export interface PgStatement {
  readonly name: string;
  readonly text: string;
}

const MAX_TEXTS = 500;
/** "cached plan must not change result type": PostgreSQL refuses a prepared statement whose tables changed shape. */
const CACHED_PLAN_CHANGED = '0A000';
const named = new Map<string, PgStatement | null>();
let serial = 0;

export function isPgPool(client: unknown): client is PgPool {
  return typeof client === 'object' && client !== null && typeof (client as PgPool).query === 'function' && 'totalCount' in client && 'ending' in client;
}

/** Values `pg` binds exactly as MikroORM would have written them into the SQL. */
export function pgBindable(params: readonly unknown[]): boolean {
  return params.every(value => value === null || (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'string');
}

/**
 * The named prepared statement of a compiled query: PostgreSQL parses and plans it once per connection, not per
 * query (MikroORM's `execute()` sends every query as new text with the values written in). Null when the SQL's
 * placeholders cannot be numbered with certainty; the caller then uses `execute()`.
 */
export function pgStatement(compiled: CompiledQuery): PgStatement | null {
  return namedStatement(compiled.sql, compiled.params.length);
}

/** Runs a named prepared statement. */
export async function runOnPg(pool: PgPool, statement: PgStatement, compiled: CompiledQuery, method: Method): Promise<unknown> {
  const arrays = method === 'values' || method === 'column';
  const { rows } = await pool.query({ ...statement, values: compiled.params, ...(arrays ? { rowMode: 'array' as const } : {}) });
  if (method === 'get') {
    return rows[0];
  }
  return method === 'column' ? (rows as unknown[][]).map(row => row[0]) : rows;
}

/**
 * Whether PostgreSQL refused a statement because its tables changed shape under it (a migration under a prepared
 * `select *`). Then it is prepared anew under a new name next time, and the caller answers this query through
 * `execute()`.
 */
export function isStalePlan(error: unknown, compiled: CompiledQuery): boolean {
  if ((error as { code?: string } | null)?.code !== CACHED_PLAN_CHANGED) {
    return false;
  }
  named.delete(compiled.sql);
  return true;
}

/** The SQL with MikroORM's `?` placeholders numbered `$1...` outside quotes, named once per text. */
function namedStatement(sql: string, params: number): PgStatement | null {
  let statement = named.get(sql);
  if (statement === undefined) {
    const text = numbered(sql);
    statement = text === undefined || text.count !== params ? null : { name: `mikro_orm_sharding_${++serial}`, text: text.sql };
    if (named.size >= MAX_TEXTS) {
      // Names are never reused, so a statement a connection prepared earlier can never meet a different text.
      named.clear();
    }
    named.set(sql, statement);
  }
  return statement;
}

function numbered(sql: string): { sql: string; count: number } | undefined {
  let out = '';
  let count = 0;
  let quote: string | undefined;
  for (const char of sql) {
    if (quote) {
      quote = char === quote ? undefined : quote;
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === '?') {
      out += `$${++count}`;
      continue;
    } else if (char === '$') {
      // A `$` outside quotes (dollar quoting, an existing parameter) makes numbering uncertain.
      return undefined;
    }
    out += char;
  }
  return quote ? undefined : { sql: out, count };
}
