import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { failedOn, recordFailure, shardFailureOf, type FailedShard } from '../errors/shard-failure.ts';
import { isShardUnavailable } from '../errors/unavailable.ts';
import type { FleetHealth } from '../fleet/health.ts';

/**
 * Partial reads: a query over several shards that answers from the shards that could be reached, and tells which
 * could not. The result keeps MikroORM's type (an array of entities, a `[entities, count]` tuple, a number); the
 * report travels beside it, as `shardFailureOf` does for errors: {@link partialFailuresOf} for arrays, and a
 * handler given as `onShardError` for any result, counts included.
 */

/** Which shards a partial answer lacks, and why. */
export interface PartialFailures {
  /** The call: `'find'` (also `findAll`, and a `findOne` by query), `'findAndCount'` or `'count'`. */
  readonly operation: string;
  /** The shards whose rows are in the answer, in the call's shard order. */
  readonly answered: readonly ShardId[];
  /** The shards that could not be reached, in the call's shard order; each error is a `SHARD_UNAVAILABLE` ShardingError. */
  readonly failed: readonly FailedShard[];
}

/**
 * What a query over several shards does when some cannot be reached (`SHARD_UNAVAILABLE`):
 * - `'fail'`: throws that error (the first unreachable shard's), as for any other shard error;
 * - `'partial'`: answers from the shards that could be reached; {@link partialFailuresOf} on the returned array
 *   tells which could not;
 * - a function: answers as `'partial'` and first calls it with the report (a count is a number and carries nothing:
 *   this is how a partial count is told). What it throws, the query throws.
 *
 * Any other error (a constraint, a statement timeout, a query MikroORM refuses) fails the query in every mode; so does
 * a query whose every shard is unreachable.
 */
export type OnShardError = 'fail' | 'partial' | ((failures: PartialFailures) => void);

/** The `onShardError` option of `find`, `findAll`, `findAndCount` and `count`. */
export interface ShardErrorOption {
  /**
   * What to do when some of the queried shards cannot be reached; see {@link OnShardError}.
   * @default the `onShardError` of `init()`, else `'fail'`
   */
  readonly onShardError?: OnShardError;
}

/** The fleet's settings that partial reads need: the default mode and the shards' breakers. */
export interface FaultPolicy {
  readonly onShardError: OnShardError;
  readonly health: FleetHealth;
}

const reports = new WeakMap<object, PartialFailures>();

/**
 * The shards missing from a partial answer (`onShardError: 'partial'`): for the array `find`/`findAll` returned, or
 * `findAndCount`'s tuple or its array. Undefined when every shard answered, or for any other value.
 *
 * @example
 * ```ts
 * const books = await em.find(Book, {}, { onShardError: 'partial' });
 * const missing = partialFailuresOf(books)?.failed.map(f => f.shard) ?? [];
 * ```
 */
export function partialFailuresOf(result: unknown): PartialFailures | undefined {
  return typeof result === 'object' && result !== null ? reports.get(result) : undefined;
}

/** Checks an `onShardError` value (from `init()` or a call); undefined stands for the default. */
export function checkOnShardError(value: unknown, source: string): OnShardError | undefined {
  if (value === undefined || value === 'fail' || value === 'partial' || typeof value === 'function') {
    return value as OnShardError | undefined;
  }
  throw ShardingError.invalidOptions(
    `\`onShardError\` of ${source} must be 'fail', 'partial' or a function; got ${JSON.stringify(value) ?? String(value)}.`,
    value,
  );
}

/**
 * Runs `read` over `shards`. In `'fail'` mode that is all. Otherwise shards whose circuit is open are left out at
 * once, and when `read` fails only because shards could not be reached, it runs again over the others (each round
 * drops at least one shard, so it ends); the report is attached to the answer with `attach` and given to a handler.
 */
export function readPartially<R>(
  policy: FaultPolicy,
  operation: string,
  given: OnShardError | undefined,
  shards: readonly ShardId[],
  read: (shards: readonly ShardId[]) => Promise<R>,
): Promise<R> {
  const mode = checkOnShardError(given, operation) ?? policy.onShardError;
  // Not async: the default costs a fan-out no extra promise.
  return mode === 'fail' ? read(shards) : readFromLiving(policy, operation, mode, shards, read);
}

async function readFromLiving<R>(
  policy: FaultPolicy,
  operation: string,
  mode: Exclude<OnShardError, 'fail'>,
  shards: readonly ShardId[],
  read: (shards: readonly ShardId[]) => Promise<R>,
): Promise<R> {
  const failed: FailedShard[] = [];
  let living = shards.filter(shard => {
    const refused = policy.health.refuseNow(shard);
    if (refused) {
      failed.push({ shard, error: failedOn(operation, shard, refused) });
    }
    return !refused;
  });
  for (;;) {
    if (living.length === 0) {
      throw recordFailure({ operation, shard: failed[0]!.shard, done: [], failed: inOrder(failed, shards) }, false);
    }
    let result: R;
    try {
      result = await read(living);
    } catch (error) {
      const lost = unreachableOnly(error, living);
      if (!lost) {
        throw error;
      }
      failed.push(...lost);
      living = living.filter(shard => !lost.some(entry => entry.shard === shard));
      continue;
    }
    if (failed.length > 0) {
      const report: PartialFailures = Object.freeze({ operation, answered: Object.freeze(living), failed: Object.freeze(inOrder(failed, shards)) });
      attach(result, report, operation === 'findAndCount');
      if (typeof mode === 'function') {
        mode(report);
      }
    }
    return result;
  }
}

/** The failed shards of an error when each of them was unreachable, and each was one of `living`; else undefined. */
function unreachableOnly(error: unknown, living: readonly ShardId[]): readonly FailedShard[] | undefined {
  const failure = shardFailureOf(error);
  if (!failure || !failure.failed.every(entry => isShardUnavailable(entry.error) && living.includes(entry.shard))) {
    return undefined;
  }
  return failure.failed;
}

function inOrder(failed: readonly FailedShard[], shards: readonly ShardId[]): FailedShard[] {
  return [...failed].sort((a, b) => shards.indexOf(a.shard) - shards.indexOf(b.shard));
}

/** Attaches the report to an array answer, and to both parts of a `[entities, count]` tuple. */
function attach(result: unknown, report: PartialFailures, tuple: boolean): void {
  if (Array.isArray(result)) {
    reports.set(result, report);
    if (tuple && Array.isArray(result[0])) {
      reports.set(result[0], report);
    }
  }
}
