import type { Platform } from '@mikro-orm/core';

/** What the merge must know of a database family, read once per platform. */
export interface PlatformTraits {
  readonly family: 'sqlite' | 'postgresql' | 'other';
  /** The database sorts NULL above every value (PostgreSQL, Oracle), not below (SQLite, MySQL, MSSQL). */
  readonly nullsHigh: boolean;
  /** The driver reads 64-bit integers as JS numbers, rounding those of 2^53 or more (better-sqlite3 through MikroORM). */
  readonly roundsBigints: boolean;
}

const known = new WeakMap<Platform, PlatformTraits>();

export function traitsOf(platform: Platform): PlatformTraits {
  let traits = known.get(platform);
  if (!traits) {
    const name = platform.constructor.name;
    traits = {
      family: /sqlite|libsql/i.test(name) ? 'sqlite' : /postgre/i.test(name) ? 'postgresql' : 'other',
      nullsHigh: !platform.sortsNullsLowest(),
      roundsBigints: /sqlite|libsql/i.test(name),
    };
    known.set(platform, traits);
  }
  return traits;
}
