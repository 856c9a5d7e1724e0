// Fresh databases for each system: SQLite files in a temp directory, or PostgreSQL databases `<prefix>_<label>_s<i>`
// created on the server and dropped after (also on error and Ctrl-C: see cli.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MikroORM, type Options } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { DriverName } from './args.ts';
import { makeItem } from './workload.ts';
import { startProxy, type Proxy } from './proxy.ts';

/** The MikroORM options of one database (one shard). */
export type DbOptions = Partial<Options>;

export interface DatabasesConfig {
  driver: DriverName;
  pgUrl: string;
  /** Route PostgreSQL connections through a proxy adding this many ms per round trip. */
  latencyMs?: number | undefined;
}

export class Databases {
  readonly driver: DriverName;
  readonly #pgUrl: string;
  readonly #latencyMs: number | undefined;
  readonly #prefix = `msbench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  #dir: string | undefined;
  #admin: MikroORM | undefined;
  readonly #proxies: Proxy[] = [];
  readonly #created = new Map<string, string[]>();
  #serial = 0;

  constructor(config: DatabasesConfig) {
    this.driver = config.driver;
    this.#pgUrl = config.pgUrl;
    this.#latencyMs = config.latencyMs;
  }

  /** MikroORM options shared by every database of this driver. */
  shared(): DbOptions {
    const common: DbOptions = { debug: false, allowGlobalContext: false, discovery: { warnWhenNoEntities: false } };
    if (this.driver === 'sqlite') return { ...common, driver: SqliteDriver };
    // Small pools: 32 shards x 3 systems must stay under max_connections (100 by default).
    return { ...common, driver: PostgreSqlDriver, pool: { min: 0, max: 2 } };
  }

  /** Creates `count` empty databases for `label` (a system) and returns their options, in shard order. */
  async provision(label: string, count: number): Promise<DbOptions[]> {
    const key = `${label}_${++this.#serial}`;
    if (this.driver === 'sqlite') {
      this.#dir ??= mkdtempSync(join(tmpdir(), 'msbench-'));
      const names = Array.from({ length: count }, (_, i) => join(this.#dir!, `${key}_s${i}.db`));
      this.#created.set(key, names);
      return names.map(dbName => ({ dbName }));
    }
    const admin = await this.#adminOrm();
    const names = Array.from({ length: count }, (_, i) => `${this.#prefix}_${key}_s${i}`.toLowerCase());
    this.#created.set(key, []);
    for (const name of names) {
      await admin.em.getConnection().execute(`create database "${name}"`);
      this.#created.get(key)!.push(name);
    }
    const ports = this.#latencyMs === undefined ? [] : await this.#proxyPorts(count);
    return names.map((name, i) => ({ clientUrl: this.#url(name, ports[i]) }));
  }

  /** PostgreSQL: runs a query on the server's `postgres` database, on a pool of its own (not the systems'). */
  async adminQuery<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const admin = await this.#adminOrm();
    return admin.em.getConnection().execute<T[]>(sql, [...params]);
  }

  /** Drops everything `provision` made with this label's options (call after closing its ORMs). */
  async release(options: readonly DbOptions[]): Promise<void> {
    const wanted = new Set(options.map(o => (o.dbName as string | undefined) ?? new URL(o.clientUrl!).pathname.slice(1)));
    for (const [key, names] of this.#created) {
      if (!names.some(n => wanted.has(n))) continue;
      await this.#drop(names);
      this.#created.delete(key);
    }
  }

  /** Drops whatever is left, stops the proxies, removes the temp directory. Safe to call more than once. */
  async closeAll(): Promise<void> {
    for (const names of this.#created.values()) await this.#drop(names).catch(() => undefined);
    this.#created.clear();
    await this.#admin?.close(true).catch(() => undefined);
    this.#admin = undefined;
    for (const proxy of this.#proxies.splice(0)) proxy.stop();
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }

  async #drop(names: string[]): Promise<void> {
    if (this.driver === 'sqlite') {
      for (const n of names) for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(n + suffix, { force: true });
      return;
    }
    const admin = await this.#adminOrm();
    for (const n of names) await admin.em.getConnection().execute(`drop database if exists "${n}" with (force)`);
  }

  async #adminOrm(): Promise<MikroORM> {
    this.#admin ??= await MikroORM.init({
      ...this.shared(),
      entities: [makeItem().ItemSchema],
      clientUrl: `${this.#pgUrl}/postgres`,
    });
    return this.#admin;
  }

  /** One proxy listener per shard: separate servers, each one round trip away. */
  async #proxyPorts(count: number): Promise<number[]> {
    const upstream = new URL(this.#pgUrl);
    const proxy = await startProxy({
      listeners: count,
      upstreamHost: upstream.hostname,
      upstreamPort: Number(upstream.port || 5432),
      delayMs: this.#latencyMs!,
    });
    this.#proxies.push(proxy);
    return proxy.ports;
  }

  #url(db: string, port?: number): string {
    const url = new URL(this.#pgUrl);
    if (port !== undefined) {
      url.hostname = '127.0.0.1';
      url.port = String(port);
    }
    url.pathname = `/${db}`;
    return url.toString();
  }
}
