/**
 * pyramid_sqlassist's reader, writer and logger of seed 003, on PostgreSQL: the application's database reached
 * through a `writer` role and a `reader` role that may only SELECT, and a log database whose lines commit on their
 * own, whatever the request's work does.
 *
 * Run: pnpm example reader-writer-logger   (PostgreSQL at PG_URL, default postgresql://postgres@127.0.0.1:5432)
 */
import { defineEntity, p, UniqueConstraintViolationException } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { PG_URL, scratch } from '../support/postgres.ts';

const GroupSchema = defineEntity({
  name: 'Group',
  tableName: 'groups',
  properties: { id: p.integer().primary(), name: p.string().length(255).unique(), description: p.text() },
});
class Group extends GroupSchema.class {}
GroupSchema.setClass(Group);

const LogEntrySchema = defineEntity({
  name: 'LogEntry',
  properties: { id: p.integer().primary(), message: p.string() },
});
class LogEntry extends LogEntrySchema.class {}
LogEntrySchema.setClass(LogEntry);

// The example's own databases and the reader's role, dropped at the end.
await using server = await scratch(['myapp', 'myapp_log'], ['myapp_reader']);

/** Which connection each query went through, as MikroORM logs it: the seed's reader/writer, here visible. */
const used: string[] = [];
await using orm = await ShardedMikroORM.init({
  driver: PostgreSqlDriver,
  clientUrl: PG_URL,
  entities: [Group, LogEntry],
  pool: { min: 0, max: 2 },
  shards: {
    // sqlalchemy_writer.url and sqlalchemy_reader.url: one database, two roles. MikroORM's `replicas` send reads to
    // the reader and writes to the primary (the writer; a real one would log in as its own role, too).
    main: { dbName: server.databases.myapp, name: 'writer', replicas: [{ name: 'reader', user: server.roles.myapp_reader }] },
    logger: { dbName: server.databases.myapp_log },
  },
  binds: { LogEntry: 'logger' }, // the logger's table lives in its own database
  defaultBind: 'main',
  debug: ['query'],
  logger: message => used.push(/via \w+ connection '(\w+)'/.exec(message)?.[1] ?? ''),
});
await orm.schema.create();
// Done once by whoever manages the database: the reader may read, nothing else.
await orm.shard('main').em.getConnection('write').execute(`grant select on all tables in schema public to "${server.roles.myapp_reader}"`);

used.length = 0; // the set-up's queries are not the point

/** The connections queries went through since the last call. */
const via = () => [...new Set(used.splice(0).filter(Boolean))].join(', ');

// The seed's view: "this should fail, assuming reader can't write" ...
const reader = orm.shard('main').em.getConnection('read');
const denied = await reader.execute(`insert into groups (name, description) values ('Test Case 1', '')`).catch((error: Error) => error.message);
console.log(`insert via ${via()}: ${denied}`);
// ... "but this should work, assuming writer can write".
const setup = orm.em.fork();
setup.create(Group, { name: 'Test Case 2', description: '' });
await setup.flush();
console.log(`insert through the entity manager, via ${via()}: done`);

// A request: reads go through the reader until the request writes; from then on through the writer, so it reads
// what it wrote (a real replica may lag behind its primary).
const request = orm.em.fork();
console.log(`groups: ${(await request.find(Group, {})).length}, via ${via()}`);
request.create(Group, { name: 'Test Case 3', description: '' });
await request.flush();
console.log(`after its write, groups: ${(await request.find(Group, {})).length}, via ${via()}`);

// The logger: its own entity manager, its own unit of work. Each line is committed when it is flushed, whatever
// the request's work does afterwards ("The logger will not [start with an automatic rollback]").
const logger = orm.em.fork();
const log = async (message: string) => {
  logger.create(LogEntry, { message });
  await logger.flush();
};

const failing = orm.em.fork();
await log('adding Test Case 2 again');
const error = await failing
  .transactional(async tx => {
    tx.create(Group, { name: 'Test Case 2', description: 'a duplicate' });
  })
  .catch((e: unknown) => e);
console.log(`the request's transaction: ${error instanceof UniqueConstraintViolationException ? 'rolled back (unique violation)' : error}`);
await log('that failed');
const check = orm.em.fork();
console.log(`groups: ${await check.count(Group)}, log lines: ${await check.count(LogEntry)}`);
