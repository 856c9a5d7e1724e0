/**
 * Seed 001, "SQLAlchemy - Multiple Database Issues":
 * > "We are making a game server using SQLAlchemy. because game servers must be very fast, we have decided to separate
 * > databases depending on user ID(integer). [...] There will be test1 ~ test10 databases. [...]
 * > `def get_engine(user_id): index = user_id%10; return engines[index]` [...]
 * > But the problem is that when I do it in multiple threads, it just raise errors"
 *
 * Ten SQLite databases chosen by `userId % 10`, a Buddy model with a per-database autoincrement id, and hundreds of
 * concurrent writers sharing one fleet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type ShardId } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawCount, rawQuery } from './raw.ts';

const BuddySchema = defineEntity({
  name: 'Buddy',
  tableName: 'test_x',
  properties: {
    id: p.integer().primary().autoincrement(),
    userId: p.integer(),
    value: p.string().length(50),
  },
});
class Buddy extends BuddySchema.class {}
BuddySchema.setClass(Buddy);

const DATABASES = 10;
const USERS = 100;
const shardOfUser = (userId: number): ShardId => `db${userId % DATABASES}`;
const valueOf = (userId: number) => `user_id: ${userId}`;

/** Burst: 400 tasks at once, each with its own session (users 0..99, four buddies each, interleaved). */
const BURST = 400;
/** Workers: 40 long-lived sessions, like the seed's threads, each writing for 25 users one after another. */
const WORKERS = 40;
const PER_WORKER = 25;

function expectedPerUser(): Map<number, number> {
  const counts = new Map<number, number>();
  const add = (userId: number) => counts.set(userId, (counts.get(userId) ?? 0) + 1);
  for (let i = 0; i < BURST; i++) {
    add(i % USERS);
  }
  for (let w = 0; w < WORKERS; w++) {
    for (let k = 0; k < PER_WORKER; k++) {
      add((w * 7 + k * 13) % USERS);
    }
  }
  return counts;
}

describe('game server: ten databases by userId % 10, concurrent writers (seed 001)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mos-seed-game-'));
  /** Every SQL statement, by the shard that ran it (each shard has its own logger). */
  const statements: { shard: ShardId; sql: string }[] = [];
  const chosenQueries: ShardId[][] = [];
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    const ids = Array.from({ length: DATABASES }, (_, i) => `db${i}`);
    orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Buddy],
      debug: ['query'],
      shards: Object.fromEntries(
        ids.map((id, i) => [id, { dbName: join(dir, `test${i}.db`), logger: (message: string) => statements.push({ shard: id, sql: message }) }]),
      ),
      shardChooser: ({ entity }) => shardOfUser((entity as Buddy).userId),
      queryChooser: ({ where }) => {
        const userId = (where as { userId?: unknown }).userId;
        const shards = typeof userId === 'number' ? [shardOfUser(userId)] : ids;
        chosenQueries.push(shards);
        return shards;
      },
    });
    await orm.schema.create();

    const burst = Array.from({ length: BURST }, async (_, i) => {
      const em = orm.em.fork();
      const userId = i % USERS;
      em.create(Buddy, { userId, value: valueOf(userId) });
      await em.flush();
    });
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      const em = orm.em.fork();
      for (let k = 0; k < PER_WORKER; k++) {
        const userId = (w * 7 + k * 13) % USERS;
        em.create(Buddy, { userId, value: valueOf(userId) });
        await em.flush();
      }
    });
    await Promise.all([...burst, ...workers]);
  });

  afterAll(async () => {
    await orm?.close(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores every buddy in its user’s database and nowhere else (raw SQL on all ten)', async () => {
    const expected = expectedPerUser();
    for (let i = 0; i < DATABASES; i++) {
      const shard = `db${i}`;
      expect(await rawCount(orm, shard, 'test_x', `user_id % ${DATABASES} != ${i}`)).toBe(0);
      expect(await rawCount(orm, shard, 'test_x', `value != 'user_id: ' || user_id`)).toBe(0);
      const perUser = await rawQuery(orm, shard, 'select user_id, count(*) as c from test_x group by user_id order by user_id');
      const mine = [...expected].filter(([userId]) => userId % DATABASES === i).sort(([a], [b]) => a - b);
      expect(perUser.map(row => [Number(row.user_id), Number(row.c)])).toEqual(mine);
    }
  });

  it('counts the right total, with each database numbering its own ids from 1', async () => {
    const total = BURST + WORKERS * PER_WORKER;
    let sum = 0;
    for (let i = 0; i < DATABASES; i++) {
      const shard = `db${i}`;
      const n = await rawCount(orm, shard, 'test_x');
      sum += n;
      const [range] = await rawQuery(orm, shard, 'select min(id) as lo, max(id) as hi, count(distinct id) as d from test_x');
      expect([Number(range!.lo), Number(range!.hi), Number(range!.d)]).toEqual([1, n, n]);
    }
    expect(sum).toBe(total);
    expect(await orm.em.fork().count(Buddy)).toBe(total);
    // Ids repeat across databases, yet a fan-out read keeps every row as its own entity.
    const all = await orm.em.fork().find(Buddy, {});
    expect(all.length).toBe(total);
    expect(new Set(all).size).toBe(total);
  });

  it('answers a per-user query from that user’s database only', async () => {
    const expected = expectedPerUser();
    for (const userId of [0, 7, 42, 99]) {
      const shard = shardOfUser(userId);
      const before = statements.length;
      const em = orm.em.fork();
      const buddies = await em.find(Buddy, { userId }, { orderBy: { id: 'asc' } });
      expect(chosenQueries.at(-1)).toEqual([shard]);
      expect(buddies.length).toBe(expected.get(userId));
      expect(buddies.every(b => b.userId === userId && em.shardOf(b) === shard)).toBe(true);
      const ran = statements.slice(before);
      expect(ran.length).toBeGreaterThan(0);
      expect(new Set(ran.map(s => s.shard))).toEqual(new Set([shard]));
    }
  });

  it('does not see a stray row planted in another database, which a fan-out query does see', async () => {
    const userId = 114 % USERS;
    const home = shardOfUser(userId);
    const stray = 'db' + ((userId + 3) % DATABASES);
    await rawQuery(orm, stray, `insert into test_x (user_id, value) values (?, ?)`, [userId, valueOf(userId)]);
    try {
      const expected = expectedPerUser().get(userId)!;
      expect(await orm.em.fork().count(Buddy, { userId })).toBe(expected);
      expect(chosenQueries.at(-1)).toEqual([home]);
      // No userId in the condition: every database is asked, and the planted row shows up.
      const em = orm.em.fork();
      const byValue = await em.find(Buddy, { value: valueOf(userId) });
      expect(byValue.length).toBe(expected + 1);
      expect(byValue.filter(b => em.shardOf(b) === stray).length).toBe(1);
    } finally {
      await rawQuery(orm, stray, 'delete from test_x where user_id % ? != ?', [DATABASES, Number(stray.slice(2))]);
    }
    expect(await rawCount(orm, stray, 'test_x', `user_id % ${DATABASES} != ${Number(stray.slice(2))}`)).toBe(0);
  });
});
