/**
 * The fan-out merge: pure functions over per-shard result lists that are each already sorted by the same
 * order. They know nothing of MikroORM; `order-by.ts` turns an `orderBy` into the {@link SortKey}s used here.
 */

/** How values of one sort key compare; decides how strings from the driver are read (`'10.5'` is a number). */
export type ValueKind = 'number' | 'bigint' | 'decimal' | 'string' | 'date' | 'boolean' | 'unknown';

/** One key of a global order. */
export interface SortKey<Row> {
  /** Reads the key's value from a row (a raw database row or an entity). */
  readonly read: (row: Row) => unknown;
  /** 1 ascending, -1 descending. */
  readonly direction: 1 | -1;
  /** Where `null`/`undefined` go, already resolved for the direction and the database's default. */
  readonly nulls: 'first' | 'last';
  /** How to compare two non-null values. */
  readonly kind: ValueKind;
}

/** One merged row and the index of the list (shard) it came from. */
export interface Merged<Row> {
  readonly source: number;
  readonly row: Row;
}

/** Compares two non-null values of one kind; values from different drivers (number vs string) are reconciled. */
export function compareValues(a: unknown, b: unknown, kind: ValueKind): number {
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    return kind === 'decimal' || kind === 'bigint' || kind === 'number' ? compareDecimalStrings(a, b) : compareStrings(a, b);
  }
  if (a instanceof Date || b instanceof Date) {
    return toTime(a) - toTime(b);
  }
  if (typeof a === 'bigint' || typeof b === 'bigint' || typeof a === 'number' || typeof b === 'number') {
    return compareDecimalStrings(String(a), String(b));
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') {
    return Number(a) - Number(b);
  }
  return compareStrings(String(a), String(b));
}

/** Code-point order: what PostgreSQL's C / C.UTF-8 collations and SQLite's BINARY collation use. */
export function compareStrings(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) {
      return x - y;
    }
    if (x > 0xffff) {
      i++;
    }
  }
  return a.length - b.length;
}

/** Compares decimal numbers written as strings (`'-12.50'`, `'9007199254740993'`) without losing precision. */
function compareDecimalStrings(a: string, b: string): number {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (x === undefined || y === undefined) {
    return Number(a) - Number(b);
  }
  if (x.negative !== y.negative) {
    return x.negative ? -1 : 1;
  }
  const sign = x.negative ? -1 : 1;
  if (x.int.length !== y.int.length) {
    return sign * (x.int.length - y.int.length);
  }
  if (x.int !== y.int) {
    return sign * (x.int < y.int ? -1 : 1);
  }
  const width = Math.max(x.frac.length, y.frac.length);
  const fx = x.frac.padEnd(width, '0');
  const fy = y.frac.padEnd(width, '0');
  return fx === fy ? 0 : sign * (fx < fy ? -1 : 1);
}

const DECIMAL = /^\s*([+-]?)0*(\d*)(?:\.(\d*?)0*)?\s*$/;

function parseDecimal(text: string): { negative: boolean; int: string; frac: string } | undefined {
  const match = DECIMAL.exec(text);
  if (!match || (match[2] === '' && match[3] === undefined && !/\d/.test(text))) {
    return undefined;
  }
  const int = match[2] ?? '';
  const frac = match[3] ?? '';
  const zero = int === '' && /^0*$/.test(frac);
  return { negative: match[1] === '-' && !zero, int, frac };
}

function toTime(value: unknown): number {
  if (value instanceof Date) {
    return value.getTime();
  }
  if (typeof value === 'number') {
    return value;
  }
  return new Date(String(value)).getTime();
}

/** The comparator of a global order made of several keys. */
export function comparatorOf<Row>(keys: readonly SortKey<Row>[]): (a: Row, b: Row) => number {
  return (a, b) => {
    for (const key of keys) {
      const x = key.read(a);
      const y = key.read(b);
      const xNull = x === null || x === undefined;
      const yNull = y === null || y === undefined;
      if (xNull || yNull) {
        if (xNull && yNull) {
          continue;
        }
        return xNull === (key.nulls === 'first') ? -1 : 1;
      }
      const order = compareValues(x, y, key.kind);
      if (order !== 0) {
        return order * key.direction;
      }
    }
    return 0;
  };
}

/**
 * K-way merge of lists each sorted by `compare`, skipping `offset` rows and keeping at most `limit`.
 * Ties keep list order (the chooser's shard order), so pages are stable.
 * Costs O((offset + limit) * lists) comparisons: shard counts are small, so a scan of the heads beats a heap.
 */
export function mergeSorted<Row>(
  lists: readonly (readonly Row[])[],
  compare: (a: Row, b: Row) => number,
  offset = 0,
  limit = Number.POSITIVE_INFINITY,
): Merged<Row>[] {
  const out: Merged<Row>[] = [];
  walkMerged(lists, compare, offset + limit, (source, row, rank) => {
    if (rank >= offset) {
      out.push({ source, row });
    }
  });
  return out;
}

/** Where a page of the merged order lies in each list: rows of list `i` before it (`skip[i]`) and in it (`take[i]`). */
export interface PagePositions {
  readonly skip: readonly number[];
  readonly take: readonly number[];
}

/**
 * The page `offset`..`offset + limit` of the merged order as positions in each list: what each shard must skip and
 * return. It lets a deep page be found on narrow rows (sort keys only) and then fetched whole, only its own rows.
 */
export function pagePositions<Row>(lists: readonly (readonly Row[])[], compare: (a: Row, b: Row) => number, offset: number, limit: number): PagePositions {
  const skip = lists.map(() => 0);
  const take = lists.map(() => 0);
  walkMerged(lists, compare, offset + limit, (source, _row, rank) => {
    if (rank < offset) {
      skip[source]!++;
    } else {
      take[source]!++;
    }
  });
  return { skip, take };
}

/** Visits the first `count` rows of the merged order with their list and global rank; ties keep list order. */
function walkMerged<Row>(
  lists: readonly (readonly Row[])[],
  compare: (a: Row, b: Row) => number,
  count: number,
  visit: (source: number, row: Row, rank: number) => void,
): void {
  const heads = lists.map(() => 0);
  for (let rank = 0; rank < count; rank++) {
    let best = -1;
    for (let i = 0; i < lists.length; i++) {
      const list = lists[i]!;
      if (heads[i]! < list.length && (best < 0 || compare(list[heads[i]!]!, lists[best]![heads[best]!]!) < 0)) {
        best = i;
      }
    }
    if (best < 0) {
      return;
    }
    visit(best, lists[best]![heads[best]!]!, rank);
    heads[best]!++;
  }
}

/** Lists one after another (no order asked for), skipping `offset` rows and keeping at most `limit`. */
export function concatPage<Row>(lists: readonly (readonly Row[])[], offset = 0, limit = Number.POSITIVE_INFINITY): Merged<Row>[] {
  const out: Merged<Row>[] = [];
  let skipped = 0;
  for (let source = 0; source < lists.length && out.length < limit; source++) {
    for (const row of lists[source]!) {
      if (skipped < offset) {
        skipped++;
        continue;
      }
      if (out.length >= limit) {
        break;
      }
      out.push({ source, row });
    }
  }
  return out;
}

/** Adds per-shard counts as drivers return them (PostgreSQL's `count(*)` is a bigint string). */
export function sumCounts(counts: readonly (number | string | bigint | null | undefined)[]): number {
  let total = 0;
  for (const count of counts) {
    total += count === null || count === undefined ? 0 : Number(count);
  }
  return total;
}

/** How many rows each shard must return so that the merged page is exact: the page can come from any one shard. */
export function pushDownLimit(offset: number | undefined, limit: number | undefined): number | undefined {
  return limit === undefined || limit < 0 ? undefined : (offset ?? 0) + limit;
}
