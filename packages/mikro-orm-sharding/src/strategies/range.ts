import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { compareStrings } from '../read/merge.ts';
import type { KeyRange, ShardStrategy, StrategyContext } from './strategy.ts';

/** A boundary of a range strategy: a number, a bigint, a string or a `Date`, all of one kind. */
export type RangeBound = number | bigint | string | Date;

/** One range: the keys from `from` (inclusive) up to the next range's `from` (exclusive) live on `shard`. */
export interface RangeEntry {
  /** Where the keys of this range live. A shard may hold several ranges (hot and archive). */
  readonly shard: ShardId;
  /**
   * The range's first key. Leave it out on the first range to take every smaller key; with it there, smaller keys
   * have no shard (`INVALID_SHARD_KEY` when written).
   */
  readonly from?: RangeBound;
}

/** A range strategy. */
export interface RangeStrategy extends ShardStrategy {
  readonly kind: 'range';
  readonly shards: readonly ShardId[];
  /** The ranges, as given. */
  readonly ranges: readonly RangeEntry[];
  /** The shard of a key (synchronous); undefined for a key of another kind or below a closed first range. */
  shardFor(key: unknown, context?: StrategyContext): ShardId | undefined;
  /** The shards whose ranges the bounds overlap; `'all'` for bounds of another kind. */
  shardsForRange(range: KeyRange, context?: StrategyContext): readonly ShardId[] | 'all';
}

type Kind = 'number' | 'string' | 'date';

/**
 * Keys in order, cut into ranges: each range's keys live together, and a query with bounds on the key
 * (`$gt`/`$gte`/`$lt`/`$lte`, `$eq`, `$in`) reads only the shards whose ranges it overlaps. For time partitions and
 * hot/archive splits. The last range is open above.
 *
 * Numbers and bigints compare as numbers, dates by time, strings by code point (as SQLite's BINARY and PostgreSQL's
 * C collation do: with another collation the database orders strings otherwise, so do not prune string ranges
 * there; see docs/strategies.md).
 *
 * @example
 * ```ts
 * range([{ shard: 'archive' }, { shard: 'hot', from: new Date('2025-01-01') }])
 * ```
 */
export function range(ranges: readonly RangeEntry[]): RangeStrategy {
  const kind = checkRanges(ranges);
  const starts = ranges.map(entry => (entry.from === undefined ? undefined : normalize(entry.from, kind)));
  const open = starts[0] === undefined;
  /** The index of the range holding a normalized key, or -1 below the first range. */
  const indexOf = (key: number | bigint | string): number => {
    // Binary search for the last range starting at or below the key.
    let low = open ? 1 : 0;
    let high = starts.length - 1;
    let found = open ? 0 : -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (compare(starts[middle]!, key) <= 0) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  };
  return {
    kind: 'range',
    ranges,
    shards: [...new Set(ranges.map(entry => entry.shard))],
    shardFor(key) {
      const value = normalize(key, kind);
      if (value === undefined) {
        return undefined;
      }
      const index = indexOf(value);
      return index < 0 ? undefined : ranges[index]!.shard;
    },
    shardsForRange(bounds: KeyRange) {
      const lower = tighter(bounds.gt, bounds.gte, kind, 1);
      const upper = tighter(bounds.lt, bounds.lte, kind, -1);
      if (lower === null || upper === null) {
        return 'all';
      }
      const first = lower === undefined ? 0 : Math.max(indexOf(lower.value), 0);
      const shards = new Set<ShardId>();
      for (let i = first; i < ranges.length; i++) {
        const start = starts[i];
        // A range starting above the upper bound (or at it, when the bound excludes it) holds none of the keys.
        const above = upper === undefined || start === undefined ? -1 : compare(start, upper.value);
        if (above > 0 || (above === 0 && !upper!.inclusive)) {
          break;
        }
        shards.add(ranges[i]!.shard);
      }
      return [...shards];
    },
  };
}

interface Bound {
  readonly value: number | bigint | string;
  readonly inclusive: boolean;
}

/**
 * The tighter of an exclusive and an inclusive bound (`direction` 1 for lower bounds, -1 for upper ones); undefined
 * when there is none, null when a bound is not a key of this kind (then nothing can be pruned).
 */
function tighter(exclusive: unknown, inclusive: unknown, kind: Kind, direction: 1 | -1): Bound | undefined | null {
  const strict = exclusive === undefined ? undefined : normalize(exclusive, kind);
  const loose = inclusive === undefined ? undefined : normalize(inclusive, kind);
  if ((exclusive !== undefined && strict === undefined) || (inclusive !== undefined && loose === undefined)) {
    return null;
  }
  if (strict === undefined) {
    return loose === undefined ? undefined : { value: loose, inclusive: true };
  }
  if (loose === undefined) {
    return { value: strict, inclusive: false };
  }
  const looseWins = compare(loose, strict) * direction > 0;
  return looseWins ? { value: loose, inclusive: true } : { value: strict, inclusive: false };
}

/** A key as this strategy compares it, or undefined for a value of another kind. */
function normalize(value: unknown, kind: Kind): number | bigint | string | undefined {
  switch (kind) {
    case 'number':
      if (typeof value === 'number') {
        return Number.isNaN(value) ? undefined : value;
      }
      if (typeof value === 'bigint') {
        return value;
      }
      // A numeric string, as a query string or a bigint column in string mode gives one.
      if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)) {
        return value.includes('.') ? Number(value) : BigInt(value);
      }
      return undefined;
    case 'string':
      return typeof value === 'string' ? value : undefined;
    case 'date': {
      const time = value instanceof Date ? value.getTime() : typeof value === 'string' || typeof value === 'number' ? new Date(value).getTime() : Number.NaN;
      return Number.isNaN(time) ? undefined : time;
    }
  }
}

/**
 * Orders two keys of one kind: numbers and bigints by value (JavaScript compares them across types), strings by code
 * point (UTF-8 byte order, which SQLite's BINARY and PostgreSQL's C collation use; `<` would compare UTF-16 units).
 */
function compare(a: number | bigint | string, b: number | bigint | string): number {
  if (typeof a === 'string' && typeof b === 'string') {
    return compareStrings(a, b);
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function kindOf(value: unknown): Kind | undefined {
  if (typeof value === 'number' || typeof value === 'bigint') {
    return 'number';
  }
  if (typeof value === 'string') {
    return 'string';
  }
  return value instanceof Date ? 'date' : undefined;
}

function checkRanges(ranges: readonly RangeEntry[]): Kind {
  if (!Array.isArray(ranges) || ranges.length === 0) {
    throw ShardingError.invalidOptions(
      `range() takes a non-empty list of ranges: range([{ shard: 'archive' }, { shard: 'hot', from: new Date('2025-01-01') }]); got ${describe(ranges)}.`,
      ranges,
    );
  }
  let kind: Kind | undefined;
  let previous: number | bigint | string | undefined;
  ranges.forEach((entry, i) => {
    if (entry === null || typeof entry !== 'object' || typeof entry.shard !== 'string' || entry.shard === '') {
      throw ShardingError.invalidOptions(`range() entry ${i} must be { shard, from }, with a shard id; got ${describe(entry)}.`, entry);
    }
    if (entry.from === undefined) {
      if (i > 0) {
        throw ShardingError.invalidOptions(
          `range() entry ${i} (shard ${describe(entry.shard)}) has no \`from\`; only the first range may leave it out.`,
          entry,
        );
      }
      return;
    }
    const own = kindOf(entry.from);
    if (own === undefined || (own === 'number' && typeof entry.from === 'number' && Number.isNaN(entry.from))) {
      throw ShardingError.invalidOptions(`range() entry ${i} has \`from\` ${describe(entry.from)}; use numbers, bigints, strings or dates.`, entry.from);
    }
    if (kind !== undefined && own !== kind) {
      throw ShardingError.invalidOptions(`range() mixes ${kind} and ${own} boundaries (entry ${i}); use one kind of key.`, entry.from);
    }
    kind = own;
    const value = normalize(entry.from, own)!;
    if (previous !== undefined && compare(value, previous) <= 0) {
      throw ShardingError.invalidOptions(
        `range() boundaries must increase; entry ${i} starts at ${describe(entry.from)}, not above the one before.`,
        entry.from,
      );
    }
    previous = value;
  });
  if (kind === undefined) {
    throw ShardingError.invalidOptions('range() needs at least one boundary (`from`); with none, use that one shard directly.', ranges);
  }
  return kind;
}
