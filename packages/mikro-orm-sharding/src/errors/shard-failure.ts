import type { ShardId } from '../choosers.ts';
import { ShardingError } from './errors.ts';
import { redactError } from './redact.ts';
import { asUnavailable } from './unavailable.ts';

/** One shard's failure within a call. */
export interface FailedShard {
  readonly shard: ShardId;
  readonly error: unknown;
}

/**
 * Where an error thrown by the sharded entity manager (or `orm.schema`, `orm.close()`) came from. The error itself
 * is the one the shard's MikroORM threw, unchanged in class; this tells which shard threw it and what the other
 * shards of the same call did.
 */
export interface ShardFailure {
  /** What the call was doing: `'find'`, `'count'`, `'findOne'`, `'flush'`, `'nativeUpdate'`, `'schema.create'`, ... */
  readonly operation: string;
  /** The shard whose error was thrown. */
  readonly shard: ShardId;
  /**
   * The shards on which the operation finished. For writes (`flush`, `nativeUpdate`, `nativeDelete`, `orm.schema.*`)
   * only the shards that committed changes: a shard that had nothing to write is not listed.
   */
  readonly done: readonly ShardId[];
  /** Every shard that failed, with its error, in shard order; the first is the thrown one. */
  readonly failed: readonly FailedShard[];
}

const failures = new WeakMap<object, ShardFailure>();

/**
 * Which shard an error came from, for an error thrown by a call of this library that reached a shard; undefined for
 * anything else (a routing mistake, which is a {@link ShardingError}, or an error thrown before any shard was asked).
 *
 * @example
 * ```ts
 * try {
 *   await em.flush();
 * } catch (error) {
 *   if (error instanceof UniqueConstraintViolationException) {
 *     const { shard, done } = shardFailureOf(error)!; // 's1', ['s0'] (s0 committed its part)
 *   }
 *   throw error;
 * }
 * ```
 */
export function shardFailureOf(error: unknown): ShardFailure | undefined {
  return typeof error === 'object' && error !== null ? failures.get(error) : undefined;
}

/**
 * Records where `failure.failed[0].error` came from and returns that error, to be rethrown unchanged in class. Its
 * message gets the shard, as MikroORM's query log names it (`(shard s1)`), and for writes the shards that committed.
 * An error already recorded keeps its first (innermost) record. Non-object throwables cannot carry it.
 * The one exception to "unchanged": a shard that could not be reached fails as `SHARD_UNAVAILABLE` naming it, with
 * the driver's error as `cause` (see errors/unavailable.ts), here and in `failed`.
 */
export function recordFailure(failure: ShardFailure, writes: boolean): unknown {
  const failed = failure.failed.map(entry => {
    const unavailable = asUnavailable(entry.shard, entry.error);
    return unavailable ? { shard: entry.shard, error: unavailable } : entry;
  });
  const error = failed[0]!.error;
  // A refusal of this library (a transaction touching a second shard, say) is not a shard's failure; an unreachable
  // shard is, though it arrives as a ShardingError.
  const refusal = error instanceof ShardingError && error.code !== 'SHARD_UNAVAILABLE';
  if (typeof error !== 'object' || error === null || failures.has(error) || refusal) {
    return error;
  }
  const record = Object.freeze({ ...failure, failed: Object.freeze(failed) });
  failures.set(error, record);
  // A driver's message may quote a connection string; the error keeps its class, not its secrets.
  redactError(error);
  if (error instanceof Error && (!(error instanceof ShardingError) || (error.code === 'SHARD_UNAVAILABLE' && (writes || failed.length > 1)))) {
    annotate(error, describe(record, writes));
  }
  return error;
}

/** {@link recordFailure} for a call that reached one shard. */
export function failedOn(operation: string, shard: ShardId, error: unknown): unknown {
  return recordFailure({ operation, shard, done: [], failed: [{ shard, error }] }, false);
}

/** The promise, with a rejection recorded as coming from `shard`. */
export function onShard<T>(operation: string, shard: ShardId, promise: Promise<T>): Promise<T> {
  return promise.catch((error: unknown) => {
    throw failedOn(operation, shard, error);
  });
}

/** How many shard ids a message lists before it says how many more there are. */
const LISTED = 5;

function describe(failure: ShardFailure, writes: boolean): string {
  const parts = [`shard ${failure.shard}`];
  if (writes && failure.done.length > 0) {
    parts.push(`${failure.operation} committed on ${list(failure.done)}`);
  }
  if (failure.failed.length > 1) {
    parts.push(`also failed on ${list(failure.failed.slice(1).map(f => f.shard))}`);
  }
  return `(${parts.join('; ')})`;
}

function list(shards: readonly ShardId[]): string {
  const shown = shards.slice(0, LISTED).join(', ');
  return shards.length > LISTED ? `${shown} and ${shards.length - LISTED} more` : shown;
}

/** Appends to the message, and to the stack's first line when it was already formatted with the old message. */
function annotate(error: Error, note: string): void {
  const before = error.message;
  const after = `${before} ${note}`;
  try {
    error.message = after;
    // V8 formats the stack on first read; MikroORM's DriverException reads it in its constructor, so its first line
    // may already hold the old message.
    const stack = error.stack;
    if (typeof stack === 'string' && before !== '' && !stack.includes(after)) {
      error.stack = stack.replace(before, after);
    }
  } catch {
    // A frozen error keeps its message; shardFailureOf() still names the shard.
  }
}
