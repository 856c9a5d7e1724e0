import { Utils, type AbortQueryOptions, type LogContext, type LoggingOptions } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { CompiledQuery } from './compile.ts';
import { isBuiltInLogger } from '../fleet/shard-logging.ts';
import { abortDefaultsOf, executeLogged, isDefaultOnQuery, nativeClientOf, whileBusy } from '../mikro-internals.ts';
import { isPgPool, isStalePlan, pgBindable, pgStatement, runOnPg, type PgPool } from './pg-statements.ts';
import { isSqlite, runOnSqlite, sqliteBindable, type SqliteDatabase } from './sqlite-statements.ts';
import { runsElsewhere } from '../table-suffix/transaction-owners.ts';

/** `all` rows as objects, `get` the first one, `values` rows as arrays, `column` the first column's values. */
export type Method = 'all' | 'get' | 'values' | 'column';

/** The options of `em.find`/`em.count` that decide how a compiled query runs and is logged. */
export interface RunOptions extends AbortQueryOptions {
  readonly connectionType?: 'read' | 'write';
  readonly logging?: LoggingOptions;
  readonly loggerContext?: LogContext;
}

type Native = { readonly sqlite: SqliteDatabase } | { readonly pg: PgPool } | null;

const natives = new WeakMap<object, Native>();

/**
 * Runs a compiled query on one shard's connection as MikroORM's `em.find` would: logged with the same context (the
 * entity manager's logger context, with its shard, and the query's `logging`), reported to the slow-query logger,
 * and failing with the DriverException subclass MikroORM converts the driver's error to.
 *
 * MikroORM's `execute()` writes the values into the SQL text, so the database parses every query anew (on SQLite
 * 22% of fan-out time, measured). Where it is safe this binds the values to a statement prepared once per SQL shape
 * instead: better-sqlite3 statements, PostgreSQL named prepared statements. It uses `execute()` whenever that could
 * differ: a custom `onQuery` (it rewrites the SQL, perhaps per call), an abort signal (MikroORM cancels the query),
 * values that would bind differently, a transaction (its connection is MikroORM's to use; on SQLite, one begun on
 * another shard's connection, which a table-suffix shard joins), or on SQLite another unit
 * of work's transaction open on the shared connection (`execute()` waits for it; a direct read would see its
 * uncommitted rows).
 */
export function runCompiled(fork: SqlEntityManager, compiled: CompiledQuery, method: Method, options: RunOptions = {}): Promise<unknown> {
  const ctx = fork.getTransactionContext();
  // The connection MikroORM's own find would use: the transaction's, else a read replica when preferred.
  const type = ctx ? 'write' : (options.connectionType ?? (fork.config.get('preferReadReplicas') ? 'read' : 'write'));
  const connection = fork.getConnection(type);
  // The shard stays open while the query runs, whichever way it reaches the database.
  return whileBusy(connection, () => runOn(fork, connection, ctx, compiled, method, options));
}

async function runOn(
  fork: SqlEntityManager,
  connection: ReturnType<SqlEntityManager['getConnection']>,
  ctx: ReturnType<SqlEntityManager['getTransactionContext']>,
  compiled: CompiledQuery,
  method: Method,
  options: RunOptions,
): Promise<unknown> {
  const signal = options.signal ?? abortDefaultsOf(fork)?.signal;
  try {
    const native = signal === undefined && !compiled.inline && isDefaultOnQuery(fork.config) ? await nativeOf(connection) : null;
    if (native && 'sqlite' in native) {
      // A transaction's statements go to its connection: a table-suffix shard that joined another's has none of its own.
      if ((ctx === undefined ? !native.sqlite.inTransaction : !runsElsewhere(ctx, connection)) && sqliteBindable(compiled.params)) {
        // The common case, nothing to log: the statement runs at once (better-sqlite3 is synchronous).
        return unseen(fork, options)
          ? runOnSqlite(native.sqlite, compiled, method)
          : await logged(fork, connection, compiled, options, () => runOnSqlite(native.sqlite, compiled, method));
      }
    } else if (native && ctx === undefined && !connectionHooks(fork) && pgBindable(compiled.params)) {
      const statement = pgStatement(compiled);
      if (statement) {
        try {
          return await logged(fork, connection, compiled, options, () => runOnPg(native.pg, statement, compiled, method));
        } catch (error) {
          if (!isStalePlan(error, compiled)) {
            throw error;
          }
        }
      }
    }
    const context = logContextOf(fork, options);
    const abort =
      signal === undefined
        ? undefined
        : { signal, inflightQueryAbortStrategy: options.inflightQueryAbortStrategy ?? abortDefaultsOf(fork)?.inflightQueryAbortStrategy };
    const result = await connection.execute(
      compiled.sql,
      compiled.params as never[],
      method === 'get' ? 'get' : 'all',
      ctx,
      abort ? { ...context, ...abort } : context,
    );
    if (method === 'values') {
      return (result as Record<string, unknown>[]).map(row => Object.values(row));
    }
    return method === 'column' ? (result as Record<string, unknown>[]).map(row => Object.values(row)[0]) : result;
  } catch (error) {
    // What `em.find` throws: the driver's error converted (TableNotFoundException, ...).
    throw fork.getDriver().convertException(error as Error);
  }
}

/**
 * Runs a prepared statement through MikroORM's query logging: the logged SQL and context are those MikroORM's
 * connection logs for `execute()` (values written in when `query-params` logging is on); unlogged when unseen.
 */
function logged<T>(fork: SqlEntityManager, connection: object, compiled: CompiledQuery, options: RunOptions, run: () => T | Promise<T>): Promise<T> | T {
  if (unseen(fork, options)) {
    return run();
  }
  const config = fork.config;
  const logger = config.getLogger();
  const builtIn = isBuiltInLogger(logger);
  const context = logContextOf(fork, options);
  const withValues = logger.isEnabled('query', context) && logger.isEnabled('query-params', context);
  // MikroORM's context carries the SQL with its values written in; its own loggers read it only as the logged query.
  const formatted =
    withValues || !builtIn || !isBuiltInLogger(config.getSlowQueryLogger()) ? fork.getPlatform().formatQuery(compiled.sql, compiled.params) : undefined;
  const shown = withValues ? formatted! : compiled.sql;
  return executeLogged(connection, shown, { query: compiled.sql, params: compiled.params, ...(formatted === undefined ? {} : { formatted }), ...context }, run);
}

/**
 * Whether nothing would see this query: MikroORM's own logger, disabled for it, and no slow-query threshold. Then
 * timing and formatting it would cost up to a tenth of a merged count.
 */
function unseen(fork: SqlEntityManager, options: RunOptions): boolean {
  const config = fork.config;
  const logger = config.getLogger();
  if (!isBuiltInLogger(logger) || config.get('slowQueryThreshold') !== undefined) {
    return false;
  }
  const probe = options.logging === undefined && options.loggerContext === undefined ? fork.getLoggerContext() : logContextOf(fork, options);
  return !logger.isEnabled('query', probe);
}

/** The log context `em.find` gives its queries: the entity manager's id and logger context, then the query's own. */
function logContextOf(fork: SqlEntityManager, options: RunOptions): LogContext {
  return Utils.merge({ id: fork.id }, fork.getLoggerContext(), options.loggerContext, options.logging);
}

/** Hooks MikroORM runs on every pooled connection it reserves (session context, user hooks): only it may query. */
function connectionHooks(fork: SqlEntityManager): boolean {
  return fork.config.get('sessionContext') === 'connection' || fork.config.get('onReserveConnection') !== undefined;
}

async function nativeOf(connection: object): Promise<Native> {
  const known = natives.get(connection);
  if (known === null || (known && ('sqlite' in known ? known.sqlite.open : !known.pg.ending))) {
    return known;
  }
  const client = await nativeClientOf(connection).catch(() => null);
  const native: Native = isSqlite(client) ? { sqlite: client } : isPgPool(client) ? { pg: client } : null;
  natives.set(connection, native);
  return native;
}
