/**
 * Named databases with `binds` (seeds 000, 001, 002, 004): an entity bound to a shard is written, looked up and
 * queried there alone, with no chooser; binds mix with choosers; a relation across databases is refused at init.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, shardConfigsForCli, ShardingError, type ShardedMikroORMOptions, type ShardId, type ShardOptions } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawCount, rawQuery } from './seeds/raw.ts';

const UserSchema = defineEntity({ name: 'User', tableName: 'user', properties: { id: p.integer().primary(), name: p.string() } });
class User extends UserSchema.class {}
UserSchema.setClass(User);

const TransactionSchema = defineEntity({
  name: 'Transaction',
  tableName: 'transaction',
  properties: { id: p.integer().primary(), userId: p.integer(), amount: p.integer(), at: p.integer() },
});
class Transaction extends TransactionSchema.class {}
TransactionSchema.setClass(Transaction);

const AuditEntrySchema = defineEntity({ name: 'AuditEntry', tableName: 'audit_entry', properties: { id: p.integer().primary(), message: p.string() } });
class AuditEntry extends AuditEntrySchema.class {}
AuditEntrySchema.setClass(AuditEntry);

/** Single-table inheritance: the child is bound through its root. */
const EventSchema = defineEntity({
  name: 'Event',
  tableName: 'event',
  discriminatorColumn: 'kind',
  properties: { id: p.integer().primary(), kind: p.string(), at: p.integer() },
});
class Event extends EventSchema.class {}
EventSchema.setClass(Event);
const LoginEventSchema = defineEntity({ name: 'LoginEvent', extends: Event, discriminatorValue: 'login', properties: { user: p.string() } });
class LoginEvent extends LoginEventSchema.class {}
LoginEventSchema.setClass(LoginEvent);

/** Authors with books: placed by a chooser, beside the bound entities. */
const AuthorSchema = defineEntity({
  name: 'Author',
  properties: { id: p.integer().primary().autoincrement(false), name: p.string(), books: () => p.oneToMany(Book).mappedBy('author') },
});
class Author extends AuthorSchema.class {}
AuthorSchema.setClass(Author);
const BookSchema = defineEntity({
  name: 'Book',
  properties: { id: p.integer().primary().autoincrement(false), title: p.string(), author: () => p.manyToOne(Author) },
});
class Book extends BookSchema.class {}
BookSchema.setClass(Book);

const dir = mkdtempSync(join(tmpdir(), 'mos-binds-'));
let files = 0;
const file = (name: string) => join(dir, `${files++}-${name}.db`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tablesOf(orm: ShardedMikroORM, shard: ShardId): Promise<string[]> {
  const rows = await rawQuery(orm, shard, `select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`);
  return rows.map(row => String(row.name));
}

async function initError(options: ShardedMikroORMOptions): Promise<ShardingError> {
  const error = await ShardedMikroORM.init(options).then(
    async orm => {
      await orm.close(true);
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ShardingError);
  return error as ShardingError;
}

describe('named databases: main, warehouse and log, with binds and no chooser', () => {
  const statements: { shard: ShardId; sql: string }[] = [];
  let orm: ShardedMikroORM<SqliteDriver, 'main' | 'warehouse' | 'log'>;

  beforeAll(async () => {
    const logged = (shard: ShardId) => ({ dbName: file(shard), logger: (sql: string) => statements.push({ shard, sql }) });
    orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      debug: ['query'],
      entities: [User, Transaction, AuditEntry, Event, LoginEvent],
      shards: { main: logged('main'), warehouse: logged('warehouse'), log: logged('log') },
      binds: { Transaction: 'warehouse', AuditEntry: 'log', Event: 'log' },
      defaultBind: 'main',
    });
    await orm.schema.create();
  });

  afterAll(() => orm?.close(true));

  it('gives each database only the tables of the entities bound to it', async () => {
    expect(await tablesOf(orm, 'main')).toEqual(['user']);
    expect(await tablesOf(orm, 'warehouse')).toEqual(['transaction']);
    expect(await tablesOf(orm, 'log')).toEqual(['audit_entry', 'event']);
    expect(orm.routing.shardChooser).toBeUndefined();
    expect(orm.routing.binds).toEqual({ byName: { Transaction: 'warehouse', AuditEntry: 'log', Event: 'log' }, defaultBind: 'main' });
  });

  it('writes each entity to its own database in one flush, with no chooser', async () => {
    const em = orm.em.fork();
    const ann = em.create(User, { name: 'ann' });
    await em.flush();
    for (let i = 1; i <= 3; i++) {
      em.create(Transaction, { userId: ann.id, amount: i * 100, at: i });
      em.create(AuditEntry, { message: `ann paid ${i * 100}` });
    }
    em.create(LoginEvent, { user: 'ann', at: 1 });
    await em.flush();
    expect(await rawCount(orm, 'main', '"user"')).toBe(1);
    expect(await rawCount(orm, 'warehouse', '"transaction"')).toBe(3);
    expect(await rawCount(orm, 'log', 'audit_entry')).toBe(3);
    expect(await rawCount(orm, 'log', 'event', `kind = 'login'`)).toBe(1);
    expect([ann, ...(await em.find(Transaction, {}))].map(e => em.shardOf(e))).toEqual(['main', 'warehouse', 'warehouse', 'warehouse']);
  });

  it('looks up and queries a bound entity on its database only', async () => {
    const em = orm.em.fork();
    const before = statements.length;
    const latest = await em.find(Transaction, {}, { orderBy: { at: 'desc' }, limit: 1 });
    expect(latest.map(tx => tx.amount)).toEqual([300]);
    expect(await em.count(Transaction, { amount: { $gte: 200 } })).toBe(2);
    const tx = await em.findOneOrFail(Transaction, latest[0]!.id);
    expect(tx).toBe(latest[0]);
    const fresh = orm.em.fork();
    expect((await fresh.findOneOrFail(Transaction, { id: latest[0]!.id })).amount).toBe(300);
    expect(fresh.getReference(Transaction, 1)).toBeInstanceOf(Transaction);
    expect(fresh.shardOf(fresh.getReference(Transaction, 2))).toBe('warehouse');
    const login = await fresh.findOneOrFail(LoginEvent, { user: 'ann' });
    expect(fresh.shardOf(login)).toBe('log');
    expect((await fresh.findAndCount(AuditEntry, {}, { orderBy: { id: 'asc' }, limit: 2 }))[1]).toBe(3);
    const ran = statements.slice(before);
    expect(ran.length).toBeGreaterThanOrEqual(6);
    expect(new Set(ran.filter(s => /transaction/.test(s.sql)).map(s => s.shard))).toEqual(new Set(['warehouse']));
    expect(new Set(ran.filter(s => /event|audit_entry/.test(s.sql)).map(s => s.shard))).toEqual(new Set(['log']));
  });

  it('inserts, upserts, updates and deletes a bound entity on its database', async () => {
    const em = orm.em.fork();
    await em.insert(AuditEntry, { id: 100, message: 'inserted' });
    await em.insertMany(AuditEntry, [
      { id: 101, message: 'a' },
      { id: 102, message: 'b' },
    ]);
    await em.upsert(AuditEntry, { id: 100, message: 'upserted' });
    expect(await em.nativeUpdate(AuditEntry, { id: { $gte: 101 } }, { message: 'updated' })).toBe(2);
    expect(await rawCount(orm, 'log', 'audit_entry', `message = 'updated'`)).toBe(2);
    expect(await em.nativeDelete(AuditEntry, { id: { $gte: 100 } })).toBe(3);
    expect(await rawCount(orm, 'log', 'audit_entry')).toBe(3);
  });

  it('refuses { shard } naming a database that does not hold the entity, writing nothing', async () => {
    const em = orm.em.fork();
    expect(() => em.create(Transaction, { userId: 1, amount: 1, at: 9 }, { shard: 'main' })).toThrow(
      expect.objectContaining({ code: 'ENTITY_NOT_ON_SHARD', shard: 'main' }),
    );
    await expect(em.insert(Transaction, { userId: 1, amount: 1, at: 9 }, { shard: 'log' })).rejects.toMatchObject({
      code: 'ENTITY_NOT_ON_SHARD',
      shard: 'log',
    });
    await expect(orm.em.fork().find(Transaction, {}, { shard: 'log' })).rejects.toMatchObject({ code: 'ENTITY_NOT_ON_SHARD', shard: 'log' });
    expect(await rawCount(orm, 'warehouse', '"transaction"')).toBe(3);
  });
});

describe('binds beside choosers', () => {
  let orm: ShardedMikroORM<SqliteDriver, 's0' | 's1' | 'log'>;
  const chosen: string[] = [];
  const queried: string[] = [];

  beforeAll(async () => {
    orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book, AuditEntry],
      shards: { s0: { dbName: file('s0') }, s1: { dbName: file('s1') }, log: { dbName: file('log') } },
      // The binds are given as a Map from entity classes.
      binds: new Map([[AuditEntry, 'log' as const]]),
      shardChooser: ({ entity, entityName, em }) => {
        chosen.push(entityName);
        return entity instanceof Book ? em.shardOf(entity.author)! : `s${(entity as Author).id % 2}`;
      },
      queryChooser: ({ entityName }) => {
        queried.push(entityName);
        return ['s0', 's1'];
      },
    });
    await orm.schema.create();
  });

  afterAll(() => orm?.close(true));

  it('gives the bound database its entities, and the other shards every entity no bind names', async () => {
    expect(await tablesOf(orm, 'log')).toEqual(['audit_entry']);
    expect(await tablesOf(orm, 's0')).toEqual(['author', 'book']);
    expect(await tablesOf(orm, 's1')).toEqual(['author', 'book']);
  });

  it('routes bound entities by their bind and the others by the choosers, which never see a bound entity', async () => {
    const em = orm.em.fork();
    const authors = [1, 2, 3].map(id => em.create(Author, { id, name: `a${id}` }));
    authors.forEach(author => em.create(Book, { id: author.id * 10, title: `b${author.id}`, author }));
    em.create(AuditEntry, { message: 'three authors' });
    await em.flush();
    // Books go with their authors (cascade), so the chooser is asked for the authors alone.
    expect(chosen).toEqual(['Author', 'Author', 'Author']);
    expect(await rawCount(orm, 's1', 'author')).toBe(2);
    expect(await rawCount(orm, 's0', 'author')).toBe(1);
    expect(await rawCount(orm, 'log', 'audit_entry')).toBe(1);

    const view = orm.em.fork();
    expect(await view.count(AuditEntry)).toBe(1);
    expect((await view.find(Author, {}, { orderBy: { id: 'asc' } })).map(a => a.id)).toEqual([1, 2, 3]);
    expect(queried).toEqual(['Author']);
  });

  it('refuses an unbound entity sent to a bound database, writing nothing', async () => {
    const em = orm.em.fork();
    em.create(AuditEntry, { message: 'not written' });
    em.create(Author, { id: 4, name: 'a4' });
    const pinned = orm.em.fork({ shard: 'log' });
    pinned.create(Author, { id: 5, name: 'a5' });
    await expect(pinned.flush()).rejects.toMatchObject({ code: 'ENTITY_NOT_ON_SHARD', shard: 'log' });
    await expect(em.upsertMany(Author, [{ id: 6, name: 'a6' }], { shard: 'log' })).rejects.toMatchObject({ code: 'ENTITY_NOT_ON_SHARD', shard: 'log' });
    expect(await rawCount(orm, 's0', 'author')).toBe(1);
    expect(await rawCount(orm, 's1', 'author')).toBe(2);
    expect(await rawCount(orm, 'log', 'audit_entry')).toBe(1);
  });
});

describe('pinned entity managers (em.fork({ shard }))', () => {
  let orm: ShardedMikroORM<SqliteDriver, 's0' | 's1' | 'log'>;
  let calls = 0;

  beforeAll(async () => {
    orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book, AuditEntry],
      shards: { s0: { dbName: file('p0') }, s1: { dbName: file('p1') }, log: { dbName: file('plog') } },
      binds: { AuditEntry: 'log' },
      shardChooser: () => {
        calls++;
        return 's0';
      },
      idChooser: () => {
        calls++;
        return ['s0', 's1'];
      },
      queryChooser: () => {
        calls++;
        return ['s0', 's1'];
      },
    });
    await orm.schema.create();
  });

  afterAll(() => orm?.close(true));

  it('routes everything it does not place otherwise to its shard, without asking the choosers', async () => {
    const em = orm.em.fork({ shard: 's1' });
    expect(em.pinnedShard).toBe('s1');
    const author = em.create(Author, { id: 7, name: 'pinned' });
    em.create(Book, { id: 70, title: 'pinned book', author });
    em.create(AuditEntry, { message: 'bound, not pinned' });
    await em.flush();
    expect(await rawCount(orm, 's1', 'author')).toBe(1);
    expect(await rawCount(orm, 's0', 'author')).toBe(0);
    expect(await rawCount(orm, 'log', 'audit_entry')).toBe(1);

    const again = orm.em.fork({ shard: 's1' });
    expect((await again.findOneOrFail(Author, 7)).name).toBe('pinned');
    expect(await again.count(Book)).toBe(1);
    expect(await again.count(AuditEntry)).toBe(1);
    expect(again.fork().pinnedShard).toBe('s1');
    // { shard } still wins over the pin.
    expect(await again.count(Author, {}, { shard: 's0' })).toBe(0);
    expect(calls).toBe(0);
    // A fork without a pin asks the choosers again.
    expect(await orm.em.fork().count(Author)).toBe(1);
    expect(calls).toBe(1);
  });

  it('refuses a pin to an unknown shard', () => {
    expect(() => orm.em.fork({ shard: 'nope' as 's0' })).toThrow(expect.objectContaining({ code: 'UNKNOWN_SHARD' }));
  });
});

describe('binds refused by init()', () => {
  it('needs a chooser unless every entity is bound, and names the unbound ones', async () => {
    const shards = { a: { dbName: file('a') }, b: { dbName: file('b') } };
    const error = await initError({ driver: SqliteDriver, entities: [User, Transaction, AuditEntry], shards, binds: { Transaction: 'b' } });
    expect(error.code).toBe('MISSING_CHOOSER');
    expect(error.message).toMatch(/"User", "AuditEntry": there is no `shardChooser`, and they are neither declared in `shardBy` nor bound/);
    const none = await initError({ driver: SqliteDriver, entities: [User], shards } as ShardedMikroORMOptions);
    expect(none.code).toBe('MISSING_CHOOSER');
    const withDefault = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [User, Transaction],
      shards,
      binds: { Transaction: 'b' },
      defaultBind: 'a',
    });
    expect(withDefault.routing.shardChooser).toBeUndefined();
    await withDefault.close(true);
  });

  it('refuses a relation between entities bound to different databases, naming both', async () => {
    const error = await initError({
      driver: SqliteDriver,
      entities: [Author, Book],
      shards: { authors: { dbName: file('authors') }, books: { dbName: file('books') } },
      binds: { Author: 'authors', Book: 'books' },
    });
    expect(error.code).toBe('CROSS_BIND_RELATION');
    expect(error.message).toMatch(
      /^(Author is bound to shard "authors", but its relation "books" targets Book, which is bound to shard "books"|Book is bound to shard "books", but its relation "author" targets Author, which is bound to shard "authors"); a relation cannot cross databases/,
    );
  });

  it('refuses a relation between a bound entity and one the choosers place', async () => {
    const error = await initError({
      driver: SqliteDriver,
      entities: [Author, Book],
      shards: { s0: { dbName: file('x0') }, s1: { dbName: file('x1') } },
      binds: { Book: 's0' },
      shardChooser: () => 's0',
    });
    expect(error).toMatchObject({ code: 'CROSS_BIND_RELATION', entity: 'Book', shard: 's0' });
    expect(error.message).toMatch(
      /^Book is bound to shard "s0", but its relation "author" targets Author, which is placed by the choosers \(bound to no shard\)/,
    );
  });

  it('refuses unknown shards and entities in binds', async () => {
    const shards = { a: { dbName: file('c') } };
    expect(await initError({ driver: SqliteDriver, entities: [User], shards, binds: { User: 'nope' } } as ShardedMikroORMOptions)).toMatchObject({
      code: 'UNKNOWN_SHARD',
      value: 'nope',
    });
    expect(await initError({ driver: SqliteDriver, entities: [User], shards, defaultBind: 'nope' } as ShardedMikroORMOptions)).toMatchObject({
      code: 'UNKNOWN_SHARD',
    });
    const unknown = await initError({ driver: SqliteDriver, entities: [User], shards, binds: { Usr: 'a' } });
    expect(unknown.code).toBe('INVALID_OPTIONS');
    expect(unknown.message).toMatch(/`binds` names "Usr", which is not an entity/);
    expect(await initError({ driver: SqliteDriver, entities: [User], shards, binds: 'a' } as unknown as ShardedMikroORMOptions)).toMatchObject({
      code: 'INVALID_OPTIONS',
    });
  });

  it('refuses a bound entity its shard does not declare (shards listing their own entities)', async () => {
    const error = await initError({
      driver: SqliteDriver,
      shards: { main: { dbName: file('m'), entities: [User] }, warehouse: { dbName: file('w'), entities: [User] } },
      binds: { User: 'main', Transaction: 'warehouse' },
    });
    // Transaction is known to no shard at all: the bind names no entity.
    expect(error.code).toBe('INVALID_OPTIONS');
    const undeclared = await initError({
      driver: SqliteDriver,
      shards: { main: { dbName: file('m2'), entities: [User] }, warehouse: { dbName: file('w2'), entities: [Transaction] } },
      binds: { User: 'warehouse', Transaction: 'warehouse' },
    });
    expect(undeclared).toMatchObject({ code: 'ENTITY_NOT_ON_SHARD', shard: 'warehouse', entity: 'User' });
  });

  it('gives MikroORM\u2019s CLI the entities of each database, as init() does', () => {
    const configs = shardConfigsForCli({
      driver: SqliteDriver,
      entities: [User, Transaction, AuditEntry],
      shards: { main: { dbName: file('cli-main') }, warehouse: { dbName: file('cli-w') }, log: { dbName: file('cli-log'), entities: [AuditEntry] } },
      binds: { Transaction: 'warehouse', AuditEntry: 'log' },
      defaultBind: 'main',
    });
    expect(configs.slice(0, 3).map(config => [(config as ShardOptions).contextName, (config as ShardOptions).entities])).toEqual([
      ['main', [User]],
      ['warehouse', [Transaction]],
      ['log', [AuditEntry]],
    ]);
  });

  it('keeps the shards that list their own entities as they are', async () => {
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [User, Transaction],
      shards: { main: { dbName: file('k1') }, warehouse: { dbName: file('k2'), entities: [Transaction, User] } },
      binds: { Transaction: 'warehouse' },
      defaultBind: 'main',
    });
    try {
      await orm.schema.create();
      expect(await tablesOf(orm, 'main')).toEqual(['user']);
      expect(await tablesOf(orm, 'warehouse')).toEqual(['transaction', 'user']);
      // { shard } still wins over the bind, on a shard that declares the entity.
      const em = orm.em.fork();
      em.create(User, { name: 'copied' }, { shard: 'warehouse' });
      em.create(User, { name: 'bound' });
      await em.flush();
      expect([await rawCount(orm, 'main', '"user"'), await rawCount(orm, 'warehouse', '"user"')]).toEqual([1, 1]);
    } finally {
      await orm.close(true);
    }
  });
});
