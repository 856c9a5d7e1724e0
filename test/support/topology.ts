import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MikroORM, type Options } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { SqliteDriver } from '@mikro-orm/sqlite';
import type { ShardOptions } from 'mikro-orm-sharding';

export const PG_URL = process.env.PG_URL ?? 'postgresql://postgres@127.0.0.1:5432';

/** Where a test fleet's databases live: SQLite files in a temp dir, or PostgreSQL databases made for the run. */
export interface Topology {
  readonly name: 'sqlite' | 'postgresql';
  /** Shared MikroORM options (the driver). */
  readonly shared: Partial<Options>;
  /** Options of a shard (or a plain reference database) by name. */
  database(name: string): ShardOptions;
  /** Shard options for `count` shards named s0..s{count-1}. */
  shards(count: number): Record<string, ShardOptions>;
  /** Drops every database it made. */
  dispose(): Promise<void>;
}

let counter = 0;

export function sqliteTopology(): Topology {
  const dir = mkdtempSync(join(tmpdir(), 'mikro-shard-test-'));
  return {
    name: 'sqlite',
    shared: { driver: SqliteDriver },
    database: name => ({ dbName: join(dir, `${name}.db`) }),
    shards(count) {
      return Object.fromEntries(Array.from({ length: count }, (_, i) => [`s${i}`, this.database(`s${i}`)]));
    },
    async dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function postgresTopology(): Topology {
  const prefix = `mos_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const made = new Set<string>();
  return {
    name: 'postgresql',
    shared: { driver: PostgreSqlDriver, clientUrl: PG_URL },
    database(name) {
      const dbName = `${prefix}_${name}`;
      made.add(dbName);
      return { dbName };
    },
    shards(count) {
      return Object.fromEntries(Array.from({ length: count }, (_, i) => [`s${i}`, this.database(`s${i}`)]));
    },
    async dispose() {
      await dropDatabases([...made]);
    },
  };
}

/** Runs SQL on the PostgreSQL server's `postgres` database through a short-lived admin connection; returns the rows of each statement. */
export async function adminQuery(statements: readonly (string | readonly [string, readonly unknown[]])[]): Promise<Record<string, unknown>[][]> {
  const admin = await MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: PG_URL,
    dbName: 'postgres',
    entities: [],
    discovery: { warnWhenNoEntities: false },
  });
  try {
    const results: Record<string, unknown>[][] = [];
    for (const statement of statements) {
      const [sql, params] = typeof statement === 'string' ? [statement, []] : statement;
      results.push(await admin.em.getConnection().execute(sql, [...params]));
    }
    return results;
  } finally {
    await admin.close(true);
  }
}

/** Drops PostgreSQL databases through a short-lived admin connection. */
export async function dropDatabases(names: readonly string[]): Promise<void> {
  if (names.length > 0) {
    await adminQuery(names.map(name => `drop database if exists "${name}" with (force)`));
  }
}

export const topologies = { sqlite: sqliteTopology, postgresql: postgresTopology } as const;
