/**
 * Seed 001, "SQLAlchemy transparent access to same table accross databases":
 * > "I have two databases with identical tables, but different data. Database db1 is used for "hot" data [...] and
 * > db2 for archival. [...] when I add a new row, it always goes into db1, but when I query one with the primary key,
 * > I'd like it to search the tables in both db1 and db2 without having to refactor all queries in my code."
 * Answer: the horizontal sharding extension, `shard_chooser` / `id_chooser` / `query_chooser`.
 *
 * Shards `hot` and `archive` (SQLite files), one table. shardChooser is always `hot`; idChooser searches hot, then
 * archive; queries fan out to both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, NotFoundError, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type ShardId } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawCount, rawCounts, rawQuery } from './raw.ts';

const MessageSchema = defineEntity({
  name: 'Message',
  properties: {
    // Ids are unique across both databases: rows are moved to the archive, not re-numbered.
    id: p.integer().primary().autoincrement(false),
    body: p.string(),
    day: p.integer(),
    status: p.string(),
  },
});
class Message extends MessageSchema.class {}
MessageSchema.setClass(Message);

interface Row {
  readonly id: number;
  readonly body: string;
  readonly day: number;
  readonly status: string;
  readonly shard: ShardId;
}

/** Ids 1..40 archived (older days), 41..52 hot; id 38 was copied back to hot and edited there, so it is in both. */
const DUPLICATE = 38;
function rows(): Row[] {
  const list: Row[] = [];
  for (let id = 1; id <= 52; id++) {
    const shard = id <= 40 ? 'archive' : 'hot';
    list.push({
      id,
      body: `message ${id}`,
      day: id <= 40 ? 100 + ((id * 17) % 40) : 200 + ((id * 5) % 12),
      status: ['open', 'closed', 'spam'][id % 3]!,
      shard,
    });
  }
  const old = list.find(row => row.id === DUPLICATE)!;
  list.push({ ...old, body: `message ${DUPLICATE} (edited in hot)`, day: 260, status: 'open', shard: 'hot' });
  return list;
}

const fields = (m: Message) => ({ id: m.id, body: m.body, day: m.day, status: m.status });

describe('hot and archive databases behind one session (seed 001)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mos-seed-hot-'));
  const chosen: string[] = [];
  let orm: ShardedMikroORM;

  const open = (idOrder: readonly ('hot' | 'archive')[]) =>
    ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Message],
      shards: { hot: { dbName: join(dir, 'db1-hot.db') }, archive: { dbName: join(dir, 'db2-archive.db') } },
      shardChooser: ({ entityName }) => {
        chosen.push(entityName);
        return 'hot';
      },
      idChooser: () => idOrder,
      queryChooser: () => ['hot', 'archive'],
    });

  beforeAll(async () => {
    orm = await open(['hot', 'archive']);
    await orm.schema.create();
    const em = orm.em.fork();
    for (const row of rows()) {
      const { shard, ...data } = row;
      // The archive is filled explicitly; hot rows go through the shard chooser.
      em.create(Message, data, shard === 'archive' ? { shard: 'archive' } : {});
    }
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('put the archived rows in archive and asked the chooser only for the others', async () => {
    const expected = { hot: rows().filter(r => r.shard === 'hot').length, archive: rows().filter(r => r.shard === 'archive').length };
    expect(await rawCounts(orm, 'message')).toEqual(expected);
    expect(chosen.length).toBe(expected.hot);
    const [oldest] = await rawQuery(orm, 'hot', 'select min(day) as d from message');
    const [newest] = await rawQuery(orm, 'archive', 'select max(day) as d from message');
    expect(Number(oldest!.d)).toBeGreaterThan(Number(newest!.d));
  });

  it('finds by primary key in either database: hot first, then archive', async () => {
    for (const row of rows()) {
      if (row.id === DUPLICATE) {
        continue;
      }
      const em = orm.em.fork();
      const found = await em.findOneOrFail(Message, row.id);
      const { shard, ...data } = row;
      expect(fields(found)).toEqual(data);
      expect(em.shardOf(found)).toBe(shard);
    }
    const em = orm.em.fork();
    expect(await em.findOne(Message, { id: 7 })).toMatchObject({ body: 'message 7' });
    expect(em.shardOf((await em.findOne(Message, { id: 7 }))!)).toBe('archive');
    expect(await em.findOne(Message, 4242)).toBeNull();
    await expect(em.findOneOrFail(Message, 4242)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('lets hot win when both databases have the id, and the idChooser order decides', async () => {
    const em = orm.em.fork();
    const found = await em.findOneOrFail(Message, DUPLICATE);
    expect(found.body).toBe(`message ${DUPLICATE} (edited in hot)`);
    expect(em.shardOf(found)).toBe('hot');
    // Both rows really exist.
    expect(await rawCount(orm, 'hot', 'message', `id = ${DUPLICATE}`)).toBe(1);
    expect(await rawCount(orm, 'archive', 'message', `id = ${DUPLICATE}`)).toBe(1);

    // The same files opened with the archive searched first answer with the archived row.
    const archiveFirst = await open(['archive', 'hot']);
    try {
      const other = archiveFirst.em.fork();
      const old = await other.findOneOrFail(Message, DUPLICATE);
      expect(old.body).toBe(`message ${DUPLICATE}`);
      expect(other.shardOf(old)).toBe('archive');
    } finally {
      await archiveFirst.close(true);
    }
  });

  it('consolidates queries over both databases: ordered, paged, filtered and counted', async () => {
    const order = (a: Row, b: Row) => b.day - a.day || a.id - b.id;
    const all = rows().sort(order);
    const em = orm.em.fork();
    const found = await em.find(Message, {}, { orderBy: { day: 'desc', id: 'asc' } });
    expect(found.map(m => ({ ...fields(m), shard: em.shardOf(m) }))).toEqual(all);
    // The id in both databases comes back once from each: two entities, one per shard.
    const twins = found.filter(m => m.id === DUPLICATE);
    expect(twins.map(m => em.shardOf(m)).sort()).toEqual(['archive', 'hot']);
    expect(twins[0]).not.toBe(twins[1]);

    // A page straddling the boundary between hot and archive days.
    const hotCount = rows().filter(r => r.shard === 'hot').length;
    const [page, total] = await orm.em.fork().findAndCount(Message, {}, { orderBy: { day: 'desc', id: 'asc' }, limit: 6, offset: hotCount - 3 });
    expect(page.map(m => m.id)).toEqual(all.slice(hotCount - 3, hotCount + 3).map(r => r.id));
    expect(total).toBe(all.length);

    const openRows = rows().filter(r => r.status === 'open');
    expect(await orm.em.fork().count(Message, { status: 'open' })).toBe(openRows.length);
    const openOldest = await orm.em.fork().find(Message, { status: 'open' }, { orderBy: { day: 'asc', id: 'asc' }, limit: 5 });
    expect(openOldest.map(m => m.id)).toEqual(
      [...openRows]
        .sort((a, b) => a.day - b.day || a.id - b.id)
        .slice(0, 5)
        .map(r => r.id),
    );
  });

  it('writes a new row to hot only, whatever its data says', async () => {
    const before = await rawCounts(orm, 'message');
    const calls = chosen.length;
    const em = orm.em.fork();
    // An "old" day does not send it to the archive: the chooser always says hot.
    const fresh = em.create(Message, { id: 1000, body: 'new', day: 1, status: 'open' });
    await em.flush();
    expect(em.shardOf(fresh)).toBe('hot');
    expect(chosen.length).toBe(calls + 1);
    expect(await rawCounts(orm, 'message')).toEqual({ hot: before.hot! + 1, archive: before.archive });
    expect(await rawCount(orm, 'hot', 'message', 'id = 1000')).toBe(1);
    expect(await rawCount(orm, 'archive', 'message', 'id = 1000')).toBe(0);
    // And it is found by id (through the idChooser, in a fresh session).
    await expect(orm.em.fork().findOneOrFail(Message, 1000)).resolves.toMatchObject({ body: 'new' });
  });

  it('updates and deletes an archived row where it lives, not in hot', async () => {
    const before = await rawCounts(orm, 'message');
    const em = orm.em.fork();
    const archived = await em.findOneOrFail(Message, 5);
    expect(em.shardOf(archived)).toBe('archive');
    archived.status = 'reviewed';
    await em.flush();
    const [row] = await rawQuery(orm, 'archive', 'select status from message where id = 5');
    expect(row!.status).toBe('reviewed');
    expect(await rawCount(orm, 'hot', 'message', 'id = 5')).toBe(0);
    expect(await rawCounts(orm, 'message')).toEqual(before);

    em.remove(archived);
    await em.flush();
    expect(await rawCounts(orm, 'message')).toEqual({ hot: before.hot, archive: before.archive! - 1 });
    expect(await orm.em.fork().findOne(Message, 5)).toBeNull();
  });
});
