import type { CompiledQuery } from './compile.ts';
import type { Method } from './execute.ts';

/** The part of better-sqlite3's API used here. */
interface SqliteStatement {
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
  raw(toggle: boolean): SqliteStatement;
  pluck(toggle: boolean): SqliteStatement;
}
export interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

const MAX_STATEMENTS = 200;
const statements = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();

export function isSqlite(client: unknown): client is SqliteDatabase {
  return (
    typeof client === 'object' && client !== null && typeof (client as SqliteDatabase).prepare === 'function' && 'inTransaction' in client && 'open' in client
  );
}

/** Whether better-sqlite3 can bind every value as MikroORM would have written it into the SQL. */
export function sqliteBindable(params: readonly unknown[]): boolean {
  return params.every(value => value === null || typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint');
}

/** Runs a compiled query as a statement prepared once per SQL text (better-sqlite3 is synchronous). */
export function runOnSqlite(db: SqliteDatabase, compiled: CompiledQuery, method: Method): unknown {
  const statement = prepared(db, compiled.sql, method);
  return method === 'get' ? statement.get(...compiled.params) : statement.all(...compiled.params);
}

/**
 * A cached statement. `values` ones return rows as arrays, `column` ones the first column's values: no object per
 * row, for deep pages, which read thousands of sort keys.
 */
function prepared(db: SqliteDatabase, sql: string, method: Method): SqliteStatement {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  const key = `${method === 'get' ? 'all' : method}\0${sql}`;
  let statement = cache.get(key);
  if (!statement) {
    statement = method === 'values' ? db.prepare(sql).raw(true) : method === 'column' ? db.prepare(sql).pluck(true) : db.prepare(sql);
    if (cache.size >= MAX_STATEMENTS) {
      cache.clear();
    }
    cache.set(key, statement);
  }
  return statement;
}
