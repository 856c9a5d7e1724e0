/**
 * Seed 003, pyramid_sqlassist's three connections, with the library's own features:
 * > "It ships with first-party support for "reader", "writer" and "logger" concepts [...] The DbSessionsContainer
 * > exposes some methods: reader [...] writer [...] logger [...] The reader and writer classes will start with an
 * > automatic rollback; The logger will not."
 * > "print self.request.dbSession.reader.query(...).all() [...] #this should fail, assuming reader can't write [...]
 * > #but this should work, assuming writer can write"
 *
 * PostgreSQL. The `main` shard connects as the writer, with MikroORM's `replicas` naming the reader: a role that may
 * only SELECT on the same database. Reads go through the reader, writes through the writer, and a request that has
 * written reads through the writer (read-your-writes). `LogEntry` is bound to a `logger` database of its own, which
 * commits on its own: a log line survives the failure of the writer's transaction. No chooser: everything is bound.
 */
import { defineEntity, DriverException, p, UniqueConstraintViolationException } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ShardedMikroORM, ShardedRequestContext, shardFailureOf } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL } from '../support/topology.ts';
import { adminExecute, rawCount, rawQuery, uniqueName } from './raw.ts';

const GroupSchema = defineEntity({
  name: 'Group',
  tableName: 'groups',
  properties: { id: p.integer().primary(), name: p.string().unique(), description: p.text() },
});
class Group extends GroupSchema.class {}
GroupSchema.setClass(Group);

const LogEntrySchema = defineEntity({
  name: 'LogEntry',
  properties: { id: p.integer().primary(), message: p.string() },
});
class LogEntry extends LogEntrySchema.class {}
LogEntrySchema.setClass(LogEntry);

describe('reader, writer and logger (seed 003)', () => {
  const app = uniqueName('app');
  const log = uniqueName('log');
  const reader = uniqueName('reader');
  const lines: string[] = [];
  let orm: ShardedMikroORM<PostgreSqlDriver, 'main' | 'logger'>;
  let created = false;

  beforeAll(async () => {
    await adminExecute([`create database "${app}"`, `create database "${log}"`, `create role "${reader}" login`]);
    created = true;
    orm = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      clientUrl: PG_URL,
      entities: [Group, LogEntry],
      pool: { min: 0, max: 2 },
      debug: ['query'],
      logger: (message: string) => lines.push(message),
      shards: {
        main: { dbName: app, name: 'writer', replicas: [{ name: 'reader', user: reader }] },
        logger: { dbName: log },
      },
      binds: { LogEntry: 'logger' },
      defaultBind: 'main',
    });
    await orm.schema.create();
    await rawQuery(orm, 'main', `grant select on all tables in schema public to "${reader}"`);
  });

  afterAll(async () => {
    await orm?.close(true);
    if (created) {
      await adminExecute([`drop database if exists "${app}" with (force)`, `drop database if exists "${log}" with (force)`, `drop role if exists "${reader}"`]);
    }
  });

  /** The connections the queries logged since `from` went through, as MikroORM's logger names them. */
  const via = (from: number) => [...new Set(lines.slice(from).flatMap(line => /via (\w+) connection '([^']+)'/.exec(line)?.slice(1, 3).join(':') ?? []))];

  it('gives each database its tables: groups on main, log entries on logger', async () => {
    expect(await rawCount(orm, 'main', 'groups')).toBe(0);
    expect(await rawCount(orm, 'logger', 'log_entry')).toBe(0);
    await expect(rawCount(orm, 'main', 'log_entry')).rejects.toThrow(/does not exist/);
  });

  it('the reader cannot write; the writer can', async () => {
    const readConnection = orm.shard('main').em.getConnection('read');
    const [whoReads] = await readConnection.execute('select current_user as u');
    expect(whoReads!.u).toBe(reader);
    // "this should fail, assuming reader can't write"
    await expect(readConnection.execute(`insert into groups (name, description) values ('Test Case 1', '')`)).rejects.toThrow(/permission denied/);
    // "but this should work, assuming writer can write"
    const em = orm.em.fork();
    em.create(Group, { name: 'Test Case 2', description: 'written' });
    await em.flush();
    expect(await rawCount(orm, 'main', 'groups')).toBe(1);
  });

  it('reads through the reader until the request writes, then through the writer', async () => {
    await ShardedRequestContext.create(orm.em, async () => {
      const start = lines.length;
      const listed = await orm.em.find(Group, {});
      expect(listed.map(g => g.name)).toEqual(['Test Case 2']);
      expect(via(start)).toEqual(['read:reader']);

      const writes = lines.length;
      orm.em.create(Group, { name: 'request group', description: '' });
      orm.em.create(LogEntry, { message: 'created request group' });
      await orm.em.flush();
      expect(via(writes)).toEqual(['write:writer']);

      const after = lines.length;
      expect(await orm.em.count(Group)).toBe(2);
      expect((await orm.em.findOneOrFail(Group, { name: 'request group' })).description).toBe('');
      expect(via(after)).toEqual(['write:writer']);
    });
    // A new request starts on the reader again.
    const start = lines.length;
    await ShardedRequestContext.create(orm.em, () => orm.em.count(Group));
    expect(via(start)).toEqual(['read:reader']);
    expect(await rawCount(orm, 'logger', 'log_entry')).toBe(1);
  });

  it('keeps the log line when the writer fails: the logger commits on its own unit of work', async () => {
    const logsBefore = await rawCount(orm, 'logger', 'log_entry');
    // One flush writing both databases is all or nothing (the fleet's transaction mode): the log line goes too.
    const together = orm.em.fork();
    together.create(Group, { name: 'Test Case 2', description: 'a duplicate' });
    together.create(LogEntry, { message: 'rolled back with the duplicate' });
    const failed = await together.flush().catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(UniqueConstraintViolationException);
    expect(shardFailureOf(failed)).toMatchObject({ operation: 'flush', shard: 'main', done: [] });
    expect(await rawCount(orm, 'logger', 'log_entry')).toBe(logsBefore);

    // The seed's logger commits on its own: its own unit of work, as its own session in SQLAlchemy.
    const logger = orm.em.fork();
    logger.create(LogEntry, { message: 'tried to add a duplicate group' });
    await logger.flush();
    const em = orm.em.fork();
    em.create(Group, { name: 'Test Case 2', description: 'a duplicate' });
    const error = await em.flush().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UniqueConstraintViolationException);
    expect(error).toBeInstanceOf(DriverException);
    expect(shardFailureOf(error)).toMatchObject({ operation: 'flush', shard: 'main', done: [] });
    expect(await rawCount(orm, 'main', 'groups')).toBe(2);
    const [line] = await rawQuery(orm, 'logger', 'select message from log_entry order by id desc limit 1');
    expect(line!.message).toBe('tried to add a duplicate group');
  });
});
