import type { SqlEntityManager } from '@mikro-orm/sql';
import type { CompiledQuery } from './compile.ts';
import { isPgPool, pgBindable, runOnPg, type PgPool } from './pg-statements.ts';
import { isSqlite, runOnSqlite, sqliteBindable, type SqliteDatabase } from './sqlite-statements.ts';

/** `all` rows as objects, `get` the first one, `values` rows as arrays, `column` the first column's values. */
export type Method = 'all' | 'get' | 'values' | 'column';

type Native = { readonly sqlite: SqliteDatabase } | { readonly pg: PgPool } | null;

const natives = new WeakMap<object, Native>();

/**
 * Runs a compiled query on one shard's connection. MikroORM's `execute()` writes the values into the SQL text, so
 * the database parses every query anew (on SQLite 22% of fan-out time, measured). Where it is safe this binds the
 * values to a statement prepared once per SQL shape instead: better-sqlite3 statements, PostgreSQL named prepared
 * statements. It falls back to `execute()` whenever that could differ: query logging on, values that would bind
 * differently, a transaction (its connection is MikroORM's to use), or on SQLite another unit of work's transaction
 * open on the shared connection (`execute()` waits for it; a direct read would see its uncommitted rows).
 */
export async function runCompiled(fork: SqlEntityManager, compiled: CompiledQuery, method: Method, connectionType?: 'read' | 'write'): Promise<unknown> {
  const ctx = fork.getTransactionContext();
  // The connection MikroORM's own find would use: the transaction's, else a read replica when preferred.
  const type = ctx ? 'write' : (connectionType ?? (fork.config.get('preferReadReplicas') ? 'read' : 'write'));
  const connection = fork.getConnection(type);
  const native = fork.config.get('debug') || compiled.inline ? null : await nativeOf(connection);
  if (native && 'sqlite' in native) {
    if ((ctx !== undefined || !native.sqlite.inTransaction) && sqliteBindable(compiled.params)) {
      return runOnSqlite(native.sqlite, compiled, method);
    }
  } else if (native && ctx === undefined && !connectionHooks(fork) && pgBindable(compiled.params)) {
    const rows = await runOnPg(native.pg, compiled, method);
    if (rows !== undefined) {
      return rows;
    }
  }
  const result = await connection.execute(compiled.sql, compiled.params as never[], method === 'get' ? 'get' : 'all', ctx);
  if (method === 'values') {
    return (result as Record<string, unknown>[]).map(row => Object.values(row));
  }
  return method === 'column' ? (result as Record<string, unknown>[]).map(row => Object.values(row)[0]) : result;
}

/** Hooks MikroORM runs on every pooled connection it reserves (session context, user hooks): only it may query. */
function connectionHooks(fork: SqlEntityManager): boolean {
  return fork.config.get('sessionContext') === 'connection' || fork.config.get('onReserveConnection') !== undefined;
}

async function nativeOf(connection: { getNativeClient(): Promise<unknown> }): Promise<Native> {
  const known = natives.get(connection);
  if (known === null || (known && ('sqlite' in known ? known.sqlite.open : !known.pg.ending))) {
    return known;
  }
  const client = await connection.getNativeClient().catch(() => null);
  const native: Native = isSqlite(client) ? { sqlite: client } : isPgPool(client) ? { pg: client } : null;
  natives.set(connection, native);
  return native;
}
