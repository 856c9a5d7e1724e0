import type { Platform } from '@mikro-orm/core';
import { traitsOf, type PlatformTraits } from './platform-traits.ts';

/** The rows of the merged order a query asks for: skip `offset`, then keep `limit` (all when undefined). */
export interface PageWindow {
  readonly offset: number;
  readonly limit: number | undefined;
}

/**
 * The `offset` and `limit` of a query as one database reads them, as whole numbers the merge can count with, or
 * undefined when only the database can say (it refuses them: `NaN`, `'abc'`, a negative limit on PostgreSQL).
 *
 * MikroORM passes both to the database as given: strings (from a query string) and fractions included. Where the
 * database accepts them, this says what it makes of them: SQLite reads a negative limit as none and a negative
 * offset as 0; PostgreSQL rounds fractions half away from zero. MikroORM drops a falsy offset (`0`, `NaN`, `''`).
 */
export function pageWindow(offset: unknown, limit: unknown, platform: Platform): PageWindow | undefined {
  const dialect = traitsOf(platform).family;
  const take = limit === undefined || limit === null ? undefined : wholeNumber(limit, dialect);
  if (take === 0 && dialect === 'sqlite' && (!offset || typeof offset === 'string' || (typeof offset === 'number' && Number.isFinite(offset)))) {
    // SQLite does not evaluate the offset of an empty page (a column name such as `Infinity` still fails to parse).
    return { offset: 0, limit: 0 };
  }
  const skip = offset ? wholeNumber(offset, dialect) : 0;
  if (skip === undefined || (take === undefined && limit !== undefined && limit !== null)) {
    return undefined;
  }
  if (skip < 0 || (take !== undefined && take < 0)) {
    if (dialect !== 'sqlite') {
      return undefined;
    }
    return { offset: Math.max(skip, 0), limit: take !== undefined && take < 0 ? undefined : take };
  }
  return { offset: skip, limit: take };
}

type Dialect = PlatformTraits['family'];

function wholeNumber(value: unknown, dialect: Dialect): number | undefined {
  if (typeof value === 'string') {
    return /^\d{1,15}$/.test(value) ? Number(value) : undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return undefined;
  }
  if (!Number.isInteger(value)) {
    if (dialect !== 'postgresql') {
      return undefined;
    }
    // PostgreSQL casts the literal to bigint, rounding half away from zero.
    value = Math.sign(value) * Math.round(Math.abs(value)) || 0;
  }
  return Number.isSafeInteger(value) ? (value as number) : undefined;
}
