import type { ShardId } from '../choosers.ts';
import { ShardingError } from './errors.ts';

/**
 * Which failures mean "the shard cannot be reached" rather than "the shard refused this statement". Only these
 * become `SHARD_UNAVAILABLE` and count towards a shard's circuit breaker; a constraint, a syntax error, a statement
 * timeout or a bad password stays MikroORM's own error: the shard answered.
 */

/** Node's socket and DNS errors (`error.code`), and mysql2's lost connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
]);

/**
 * PostgreSQL SQLSTATEs: connection exceptions (class 08, but not 08P01, a protocol violation), the server shutting
 * down or starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now) and no connection
 * slot left (53300 too_many_connections).
 */
const SQL_STATES = new Set(['08000', '08001', '08003', '08004', '08006', '08007', '57P01', '57P02', '57P03', '53300']);

/** `pg` and `pg-pool` raise these without a code. */
const MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'timeout expired',
]);

/** How deep `cause` chains are followed (`pg-pool` wraps the socket error of a connect timeout). */
const DEPTH = 4;

/** Whether an error (or one it was caused by) says the shard's server could not be reached. */
export function isUnavailable(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < DEPTH && typeof current === 'object' && current !== null; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (code === 'SHARD_UNAVAILABLE' || NETWORK_CODES.has(code) || SQL_STATES.has(code))) {
      return true;
    }
    if (typeof message === 'string' && MESSAGES.has(message)) {
      return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether this is the library's `SHARD_UNAVAILABLE` error. */
export function isShardUnavailable(error: unknown): error is ShardingError {
  return error instanceof ShardingError && error.code === 'SHARD_UNAVAILABLE';
}

const converted = new WeakMap<object, ShardingError>();

/**
 * The `SHARD_UNAVAILABLE` error for a shard's failure when it is one (the same object each time it is asked about
 * the same error), else undefined. A refusal of an open circuit arrives wrapped by MikroORM in a `DriverException`
 * that copied its fields; its message is kept as it is.
 */
export function asUnavailable(shard: ShardId, error: unknown): ShardingError | undefined {
  if (isShardUnavailable(error)) {
    return error;
  }
  if (typeof error !== 'object' || error === null || !isUnavailable(error)) {
    return undefined;
  }
  let made = converted.get(error);
  if (!made) {
    const { code, message, cause } = error as { code?: unknown; message?: unknown; cause?: unknown };
    // MikroORM's copy of the breaker's own refusal: its message as it is, and the connection error behind it as cause.
    made =
      code === 'SHARD_UNAVAILABLE' && typeof message === 'string'
        ? new ShardingError('SHARD_UNAVAILABLE', message, { shard, cause: cause ?? error })
        : ShardingError.shardUnavailable(shard, error);
    converted.set(error, made);
  }
  return made;
}
