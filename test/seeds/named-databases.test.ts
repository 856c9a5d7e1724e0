/**
 * Seeds 000 (TurboGears "Using Multiple Databases"), 002 (Pylons "Advanced Models") and 004 (pyramid_sqlalchemy
 * "Multiple databases"):
 * > 004: "Here is an example that defines a `user` table in the default database, and a `transaction` table in a data
 * > warehouse [...] this is how you can retrieve the latest transaction from the data warehouse:
 * > `sql_session.query(Transaction).order_by(Transaction.timestamp).limit(1).first()` [...] you can also use
 * > `get_sql_query`, which is smart enough to figure out which session it needs to use."
 * > 000: "When using multiple databases you won't be able to create relations (foreign keys) between tables on two
 * > different databases."
 *
 * Named databases `main`, `warehouse` and `log`, each holding only its own entities (per-shard `entities`), routed
 * by entity name in all three choosers: one session that figures out which database to use.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type ShardId, type ShardOptions } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawCount, rawQuery } from './raw.ts';

const UserSchema = defineEntity({
  name: 'User',
  tableName: 'user',
  properties: {
    id: p.integer().primary(),
    name: p.string(),
  },
});
class User extends UserSchema.class {}
UserSchema.setClass(User);

const TransactionSchema = defineEntity({
  name: 'Transaction',
  tableName: 'transaction',
  properties: {
    id: p.integer().primary().fieldName('tx_id'),
    // No foreign key to `user`: it lives in another database.
    userId: p.integer(),
    amount: p.integer(),
    timestamp: p.datetime(),
  },
});
class Transaction extends TransactionSchema.class {}
TransactionSchema.setClass(Transaction);

const LogEntrySchema = defineEntity({
  name: 'LogEntry',
  tableName: 'log_entry',
  properties: {
    id: p.integer().primary(),
    level: p.string(),
    message: p.string(),
  },
});
class LogEntry extends LogEntrySchema.class {}
LogEntrySchema.setClass(LogEntry);

type Database = 'main' | 'warehouse' | 'log';
const HOME: Record<string, Database> = { User: 'main', Transaction: 'warehouse', LogEntry: 'log' };
const TABLES: Record<ShardId, string[]> = { main: ['user'], warehouse: ['transaction'], log: ['log_entry'] };
const home = (entityName: string): Database => {
  const shard = HOME[entityName];
  if (!shard) {
    throw new Error(`no database for ${entityName}`);
  }
  return shard;
};

const USERS = ['ann', 'bob', 'cid'];
/** Transactions in an order that is not their time order. */
const TRANSACTIONS = Array.from({ length: 9 }, (_, i) => ({ user: USERS[i % 3]!, amount: (i + 1) * 100, minute: (i * 4) % 9 }));
const BASE = Date.UTC(2024, 0, 1, 12, 0, 0);

describe('named databases: main, warehouse and log, each with its own entities (seeds 000, 002, 004)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mos-seed-named-'));
  const statements: { shard: ShardId; sql: string }[] = [];
  const queried: { entityName: string; shards: readonly ShardId[] }[] = [];
  let orm: ShardedMikroORM;
  const userIds = new Map<string, number>();

  beforeAll(async () => {
    const shard = (id: ShardId, entities: ShardOptions['entities']): ShardOptions => ({
      dbName: join(dir, `${id}.db`),
      entities,
      logger: (message: string) => statements.push({ shard: id, sql: message }),
    });
    orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      debug: ['query'],
      shards: { main: shard('main', [User]), warehouse: shard('warehouse', [Transaction]), log: shard('log', [LogEntry]) },
      shardChooser: ({ entityName }) => home(entityName),
      idChooser: ({ entityName }) => [home(entityName)],
      queryChooser: ({ entityName }) => {
        const shards = [home(entityName)];
        queried.push({ entityName, shards });
        return shards;
      },
    });
    await orm.schema.create();

    // One session, one flush: every entity goes to its own database.
    const em = orm.em.fork();
    const users = USERS.map(name => em.create(User, { name }));
    USERS.forEach(name => em.create(LogEntry, { level: 'info', message: `created user ${name}` }));
    await em.flush();
    users.forEach(user => userIds.set(user.name, user.id));
    for (const tx of TRANSACTIONS) {
      em.create(Transaction, { userId: userIds.get(tx.user)!, amount: tx.amount, timestamp: new Date(BASE + tx.minute * 60_000) });
      em.create(LogEntry, { level: tx.amount >= 500 ? 'warn' : 'info', message: `${tx.user} paid ${tx.amount}` });
    }
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates in each database only its own tables', async () => {
    for (const shard of orm.shardIds) {
      const tables = await rawQuery(orm, shard, `select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`);
      expect(tables.map(row => row.name)).toEqual(TABLES[shard]);
    }
  });

  it('writes each entity to its own database (counted with raw SQL on all three)', async () => {
    expect(await rawCount(orm, 'main', '"user"')).toBe(USERS.length);
    expect(await rawCount(orm, 'warehouse', '"transaction"')).toBe(TRANSACTIONS.length);
    expect(await rawCount(orm, 'log', '"log_entry"')).toBe(USERS.length + TRANSACTIONS.length);
    // The tables that belong elsewhere do not exist here, so nothing could have been written to them.
    for (const shard of orm.shardIds) {
      for (const table of ['user', 'transaction', 'log_entry'].filter(t => !TABLES[shard]!.includes(t))) {
        await expect(rawCount(orm, shard, `"${table}"`)).rejects.toThrow(/no such table/);
      }
    }
    const [sum] = await rawQuery(orm, 'warehouse', 'select sum(amount) as s from "transaction"');
    expect(Number(sum!.s)).toBe(TRANSACTIONS.reduce((n, tx) => n + tx.amount, 0));
  });

  it('reads each entity from its own database: by id, by query, and joined in the application', async () => {
    const em = orm.em.fork();
    const bob = await em.findOneOrFail(User, userIds.get('bob')!);
    expect(bob.name).toBe('bob');
    expect(em.shardOf(bob)).toBe('main');

    // No foreign key across databases: the "join" is a second query, which goes to the warehouse.
    const txs = await em.find(Transaction, { userId: bob.id }, { orderBy: { timestamp: 'asc' } });
    const mine = TRANSACTIONS.filter(tx => tx.user === 'bob').sort((a, b) => a.minute - b.minute);
    expect(txs.map(tx => tx.amount)).toEqual(mine.map(tx => tx.amount));
    expect(txs.every(tx => em.shardOf(tx) === 'warehouse')).toBe(true);

    const warnings = await em.find(LogEntry, { level: 'warn' }, { orderBy: { id: 'asc' } });
    expect(warnings.map(entry => entry.message)).toEqual(TRANSACTIONS.filter(tx => tx.amount >= 500).map(tx => `${tx.user} paid ${tx.amount}`));
    expect(await em.count(LogEntry)).toBe(USERS.length + TRANSACTIONS.length);
    expect(queried.slice(-3).map(q => [q.entityName, q.shards])).toEqual([
      ['Transaction', ['warehouse']],
      ['LogEntry', ['log']],
      ['LogEntry', ['log']],
    ]);
  });

  it('reads the latest transaction from the warehouse, and only the warehouse', async () => {
    const latest = [...TRANSACTIONS].sort((a, b) => b.minute - a.minute)[0]!;
    const earliest = [...TRANSACTIONS].sort((a, b) => a.minute - b.minute)[0]!;
    const before = statements.length;
    const em = orm.em.fork();

    // "latest": order by timestamp descending, limit 1 (MikroORM's findOne refuses an empty condition, so find).
    const [found] = await em.find(Transaction, {}, { orderBy: { timestamp: 'desc' }, limit: 1 });
    if (!found) {
      throw new Error('no transaction found');
    }
    expect(found.amount).toBe(latest.amount);
    expect(found.timestamp.getTime()).toBe(BASE + latest.minute * 60_000);
    expect(found.userId).toBe(userIds.get(latest.user));
    expect(em.shardOf(found)).toBe('warehouse');

    // The seed's literal query: order_by(timestamp).limit(1).first().
    const [first] = await em.find(Transaction, {}, { orderBy: { timestamp: 'asc' }, limit: 1 });
    expect(first!.amount).toBe(earliest.amount);
    // findOne with a condition and an order: the latest of one user.
    const latestOfCid = [...TRANSACTIONS].filter(tx => tx.user === 'cid').sort((a, b) => b.minute - a.minute)[0]!;
    const cids = await em.findOneOrFail(Transaction, { userId: userIds.get('cid')! }, { orderBy: { timestamp: 'desc' } });
    expect(cids.amount).toBe(latestOfCid.amount);

    const ran = statements.slice(before);
    expect(ran.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ran.map(s => s.shard))).toEqual(new Set(['warehouse']));
  });

  it('refuses to write an entity into a database that does not hold it, writing nothing', async () => {
    const em = orm.em.fork();
    const attempt = async () => {
      em.create(Transaction, { userId: 1, amount: 1, timestamp: new Date() }, { shard: 'main' });
      await em.flush();
    };
    // main's MikroORM does not know Transaction at all: refused before anything is made.
    await expect(attempt()).rejects.toMatchObject({ code: 'ENTITY_NOT_ON_SHARD', shard: 'main', entity: 'Transaction' });
    await expect(attempt()).rejects.toThrow(/shard "main".*do not include Transaction.*"warehouse"/);
    expect(await rawCount(orm, 'warehouse', '"transaction"')).toBe(TRANSACTIONS.length);
    expect(await rawCount(orm, 'main', '"user"')).toBe(USERS.length);
    expect(await rawCount(orm, 'log', '"log_entry"')).toBe(USERS.length + TRANSACTIONS.length);
  });
});
