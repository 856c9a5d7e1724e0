import type { SqlEntityManager } from '@mikro-orm/sql';
import type { CompiledQuery } from './compile.ts';

/** The part of better-sqlite3's API this module uses. */
interface SqliteStatement {
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
  raw(toggle: boolean): SqliteStatement;
  pluck(toggle: boolean): SqliteStatement;
}
interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

/** `all` rows as objects, `get` the first one, `values` rows as arrays, `column` the first column's values. */
export type Method = 'all' | 'get' | 'values' | 'column';

const MAX_STATEMENTS = 200;
const natives = new WeakMap<object, SqliteDatabase | null>();
const statements = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();

/**
 * Runs a compiled query on one shard's connection. MikroORM's `execute()` inlines the parameters into the SQL
 * text, so SQLite prepares every statement anew (22% of fan-out time, measured); on SQLite this binds them to a
 * statement prepared once per SQL shape instead. It falls back to `execute()` whenever that could differ: query
 * logging on, values better-sqlite3 cannot bind, or another unit of work's transaction open on the connection
 * (`execute()` waits for it; the shared connection would otherwise read its uncommitted rows).
 */
export async function runCompiled(fork: SqlEntityManager, compiled: CompiledQuery, method: Method, connectionType?: 'read' | 'write'): Promise<unknown> {
  const ctx = fork.getTransactionContext();
  // The connection MikroORM's own find would use: the transaction's, else a read replica when preferred.
  const type = ctx ? 'write' : (connectionType ?? (fork.config.get('preferReadReplicas') ? 'read' : 'write'));
  const connection = fork.getConnection(type);
  const db = await sqliteOf(connection);
  if (db && db.open && (ctx !== undefined || !db.inTransaction) && !fork.config.get('debug') && compiled.params.every(bindable)) {
    const statement = prepared(db, compiled.sql, method);
    return method === 'get' ? statement.get(...compiled.params) : statement.all(...compiled.params);
  }
  const result = await connection.execute(compiled.sql, compiled.params as never[], method === 'get' ? 'get' : 'all', ctx);
  if (method === 'values') {
    return (result as Record<string, unknown>[]).map(row => Object.values(row));
  }
  return method === 'column' ? (result as Record<string, unknown>[]).map(row => Object.values(row)[0]) : result;
}

async function sqliteOf(connection: { getNativeClient(): Promise<unknown> }): Promise<SqliteDatabase | null> {
  const known = natives.get(connection);
  if (known === null || known?.open) {
    return known;
  }
  const client = await connection.getNativeClient().catch(() => null);
  const db = isSqlite(client) ? client : null;
  natives.set(connection, db);
  return db;
}

function isSqlite(client: unknown): client is SqliteDatabase {
  return typeof client === 'object' && client !== null && typeof (client as SqliteDatabase).prepare === 'function' && 'inTransaction' in client && 'open' in client;
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

function bindable(value: unknown): boolean {
  return value === null || typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint';
}
