import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';

/** How work that touches many shards is run. */
export interface FleetRunOptions {
  /**
   * The shards to work on, in this order; each must be a configured shard id.
   * @default every shard, in the order of `shards`
   */
  readonly shards?: readonly ShardId[];
  /**
   * How many shards work at once. A fleet of hundreds of databases on a few servers should not get hundreds of
   * connections and DDL statements at the same moment.
   * @default 4
   */
  readonly concurrency?: number;
}

/** Concurrency of the fleet's own work on many shards at once (connecting at init, closing, `orm.schema.*`). */
export const FLEET_CONCURRENCY = 16;

/** The default of {@link FleetRunOptions.concurrency}. */
export const DEFAULT_CONCURRENCY = 4;

/** What happened on one shard. */
export type ShardOutcome<T> =
  | { readonly shard: ShardId; readonly status: 'done'; readonly value: T; readonly ms: number }
  | { readonly shard: ShardId; readonly status: 'failed'; readonly error: unknown; readonly ms: number }
  /** Not started, because another shard had failed first. */
  | { readonly shard: ShardId; readonly status: 'skipped' };

/**
 * Runs `task` on each shard with at most `concurrency` shards at once, in the given order, and reports every
 * shard's outcome (in that order) with its time. After the first failure no new shard is started (unless
 * `keepGoing`, for clean-up that must reach every shard); shards already running are awaited, so nothing is left
 * running unobserved. It never throws: the caller decides what a failure means.
 */
export async function runBounded<T>(
  ids: readonly ShardId[],
  task: (shard: ShardId) => Promise<T>,
  { concurrency = DEFAULT_CONCURRENCY, keepGoing = false }: { readonly concurrency?: number; readonly keepGoing?: boolean } = {},
): Promise<ShardOutcome<T>[]> {
  const outcomes: ShardOutcome<T>[] = ids.map(shard => ({ shard, status: 'skipped' }));
  let next = 0;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop && next < ids.length) {
      const index = next++;
      const shard = ids[index]!;
      const start = performance.now();
      try {
        const value = await task(shard);
        outcomes[index] = { shard, status: 'done', value, ms: performance.now() - start };
      } catch (error) {
        stop = !keepGoing;
        outcomes[index] = { shard, status: 'failed', error, ms: performance.now() - start };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
  return outcomes;
}

/** The values of outcomes that all succeeded, in order. Throws if one did not: check for failures first. */
export function doneValues<T>(outcomes: readonly ShardOutcome<T>[]): T[] {
  return outcomes.map(outcome => {
    if (outcome.status !== 'done') throw new Error(`internal: shard "${outcome.shard}" did not succeed`);
    return outcome.value;
  });
}

/** The shards a fleet operation works on, checked before any of them is touched; and a checked concurrency. */
export function fleetRunTargets(known: readonly ShardId[], options: FleetRunOptions, source: string): { ids: readonly ShardId[]; concurrency: number } {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw ShardingError.invalidOptions(`\`concurrency\` of ${source} must be a whole number of at least 1; got ${String(concurrency)}.`, concurrency);
  }
  if (options.shards === undefined) {
    return { ids: known, concurrency };
  }
  if (!Array.isArray(options.shards) || options.shards.length === 0) {
    throw ShardingError.invalidOptions(`\`shards\` of ${source} must be a non-empty list of shard ids; got ${JSON.stringify(options.shards)}.`, options.shards);
  }
  for (const id of options.shards) {
    if (!known.includes(id)) {
      throw new ShardingError(
        'UNKNOWN_SHARD',
        `${source} was given unknown shard ${JSON.stringify(id)} in \`shards\`; known shards are ${known.map(s => `"${s}"`).join(', ')}. Nothing was done.`,
        { value: id },
      );
    }
  }
  return { ids: [...new Set(options.shards)], concurrency };
}
