/**
 * Scratch databases for the examples that need PostgreSQL: made on the server at `PG_URL` when an example starts,
 * dropped when it ends. A real application points at databases that exist already; this file is only what lets
 * each example run from a fresh clone and leave nothing behind.
 */
import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';

/** The server: `PG_URL`, or a local PostgreSQL with trust authentication for user postgres. */
export const PG_URL = process.env.PG_URL ?? 'postgresql://postgres@127.0.0.1:5432';

/** Fresh databases (and login roles), each under a name no other run uses; `await using` drops them all. */
export interface Scratch<D extends string, R extends string> extends AsyncDisposable {
  readonly databases: Record<D, string>;
  readonly roles: Record<R, string>;
}

/** Runs statements on the server's `postgres` database. */
async function onServer(statements: readonly string[]): Promise<void> {
  const admin = await MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: PG_URL,
    dbName: 'postgres',
    entities: [],
    discovery: { warnWhenNoEntities: false },
  });
  try {
    for (const sql of statements) await admin.em.getConnection().execute(sql);
  } finally {
    await admin.close(true);
  }
}

/** Creates the databases and roles, named `example_<name>_<pid>_<time>`. */
export async function scratch<D extends string, R extends string = never>(databases: readonly D[], roles: readonly R[] = []): Promise<Scratch<D, R>> {
  const unique = (name: string) => `example_${name}_${process.pid}_${Date.now().toString(36)}`;
  const names = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map(key => [key, unique(key)])) as Record<K, string>;
  const made = { databases: names(databases), roles: names(roles) };
  const drop = () =>
    onServer([
      ...Object.values<string>(made.databases).map(db => `drop database if exists "${db}" with (force)`),
      ...Object.values<string>(made.roles).map(role => `drop role if exists "${role}"`),
    ]);
  try {
    await onServer([
      ...Object.values<string>(made.databases).map(db => `create database "${db}"`),
      ...Object.values<string>(made.roles).map(role => `create role "${role}" login`),
    ]);
  } catch (error) {
    await drop().catch(() => undefined);
    throw error;
  }
  return { ...made, [Symbol.asyncDispose]: drop };
}
