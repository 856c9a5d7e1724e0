import { resolve } from 'node:path';
import type { Configuration, Connection } from '@mikro-orm/core';
import { traitsOf } from '../read/platform-traits.ts';

const databases = new WeakMap<Configuration, string | null>();

/** A MikroORM or an entity manager of one: its configuration and its write connection. */
export interface OnDatabase {
  readonly config: Configuration;
  getConnection(type: 'write'): Connection;
}

/**
 * Which database a shard's MikroORM writes to, as a key two shards share only when they are one database reached
 * the same way: SQLite, the same file; PostgreSQL, the same host, port, user, database and schema. Table-suffix
 * shards are such shards. `undefined` for one that cannot be shared (SQLite in memory, another driver).
 */
export function databaseOf(orm: OnDatabase): string | undefined {
  let key = databases.get(orm.config);
  if (key === undefined) {
    key = keyOf(orm);
    databases.set(orm.config, key);
  }
  return key ?? undefined;
}

function keyOf(orm: OnDatabase): string | null {
  const { family } = traitsOf(orm.config.getPlatform());
  if (family === 'sqlite') {
    const dbName = orm.config.get('dbName');
    return typeof dbName === 'string' && dbName !== '' && dbName !== ':memory:' && !dbName.startsWith('file:') ? `sqlite\0${resolve(dbName)}` : null;
  }
  if (family === 'postgresql') {
    const { host, port, user, database } = orm.getConnection('write').getConnectionOptions();
    return `postgresql\0${host}\0${port}\0${user}\0${database}\0${orm.config.get('schema') ?? ''}`;
  }
  return null;
}
