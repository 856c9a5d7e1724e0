/**
 * Seed 003, pyramid_sqlassist:
 * > "SQLAssist offers a streamlined integration for handling multiple SQLAlchemy database connections under Pyramid.
 * > It ships with first-party support for "reader", "writer" and "logger" concepts [...] This is an example for a
 * > Pyramid app, which creates a READER and WRITER connection."
 *
 * PostgreSQL: one database, two shards over it. `writer` connects as postgres, `reader` as a role that may only
 * SELECT. New entities go to the writer; id lookups and queries go to the reader.
 */
import { DriverException } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { shardFailureOf, ShardedMikroORM } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL } from '../support/topology.ts';
import { adminExecute, rawCount, rawQuery, uniqueName } from './raw.ts';

const ArticleSchema = defineEntity({
  name: 'Article',
  properties: {
    id: p.integer().primary(),
    title: p.string(),
    views: p.integer(),
  },
});
class Article extends ArticleSchema.class {}
ArticleSchema.setClass(Article);

const TITLES = ['pyramid', 'sqlassist', 'reader', 'writer', 'logger'];

describe('reader and writer connections to one PostgreSQL database (seed 003)', () => {
  const dbName = uniqueName('rw');
  const reader = uniqueName('reader');
  let orm: ShardedMikroORM;
  let created = false;
  const ids = new Map<string, number>();

  beforeAll(async () => {
    await adminExecute([`create database "${dbName}"`, `create role "${reader}" login`]);
    created = true;
    orm = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      clientUrl: PG_URL,
      dbName,
      entities: [Article],
      shards: { writer: {}, reader: { user: reader } },
      shardChooser: () => 'writer',
      idChooser: () => ['reader'],
      queryChooser: () => ['reader'],
    });
    // Only the writer may create tables; then the reader is granted SELECT and nothing else.
    await orm.shard('writer').schema.create();
    await rawQuery(orm, 'writer', `grant select on all tables in schema public to "${reader}"`);

    const em = orm.em.fork();
    const articles = TITLES.map((title, i) => em.create(Article, { title, views: i * 10 }));
    await em.flush();
    articles.forEach(article => ids.set(article.title, article.id));
  });

  afterAll(async () => {
    await orm?.close(true);
    if (created) {
      await adminExecute([`drop database if exists "${dbName}" with (force)`, `drop role if exists "${reader}"`]);
    }
  });

  it('connects each shard as its own role', async () => {
    const [w] = await rawQuery(orm, 'writer', 'select current_user as u, current_database() as d');
    const [r] = await rawQuery(orm, 'reader', 'select current_user as u, current_database() as d');
    expect(w).toEqual({ u: 'postgres', d: dbName });
    expect(r).toEqual({ u: reader, d: dbName });
  });

  it('writes through the writer, and the reader sees the rows', async () => {
    expect(await rawCount(orm, 'writer', 'article')).toBe(TITLES.length);
    expect(await rawCount(orm, 'reader', 'article')).toBe(TITLES.length);

    const em = orm.em.fork();
    const fresh = em.create(Article, { title: 'fresh', views: 0 });
    await em.flush();
    expect(em.shardOf(fresh)).toBe('writer');
    ids.set('fresh', fresh.id);

    const view = orm.em.fork();
    const found = await view.findOneOrFail(Article, fresh.id);
    expect(view.shardOf(found)).toBe('reader');
    expect(found.title).toBe('fresh');
    const all = await view.find(Article, {}, { orderBy: { id: 'asc' } });
    expect(all.map(a => a.title)).toEqual([...TITLES, 'fresh']);
    expect(all.every(a => view.shardOf(a) === 'reader')).toBe(true);
  });

  it('fails to flush a change to an entity loaded through the reader, leaving the row unchanged', async () => {
    const id = ids.get('reader')!;
    const [before] = await rawQuery(orm, 'writer', 'select title, views from article where id = ?', [id]);

    const em = orm.em.fork();
    const article = await em.findOneOrFail(Article, id);
    expect(em.shardOf(article)).toBe('reader');
    article.views += 1;
    article.title = 'changed through the reader';
    const error = await em.flush().catch((e: unknown) => e);

    // MikroORM's own exception, as one database would throw it, naming the shard.
    expect(error).toBeInstanceOf(DriverException);
    expect((error as Error).message).toMatch(/permission denied for table article.* \(shard reader\)$/);
    expect((error as { code?: string }).code).toBe('42501');
    expect(shardFailureOf(error)).toMatchObject({ operation: 'flush', shard: 'reader', done: [] });

    const [after] = await rawQuery(orm, 'writer', 'select title, views from article where id = ?', [id]);
    expect(after).toEqual(before);
  });

  it('fails to insert through the reader explicitly, writing nothing', async () => {
    const before = await rawCount(orm, 'writer', 'article');
    const em = orm.em.fork();
    em.create(Article, { title: 'sneaky', views: 0 }, { shard: 'reader' });
    const error = await em.flush().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverException);
    expect((error as Error).message).toMatch(/permission denied/);
    expect(shardFailureOf(error)?.shard).toBe('reader');
    expect(await rawCount(orm, 'writer', 'article')).toBe(before);
    expect(await rawCount(orm, 'writer', 'article', `title = 'sneaky'`)).toBe(0);
  });

  it('reads through the writer with { shard: "writer" }, and a change made there flushes', async () => {
    const id = ids.get('writer')!;
    const em = orm.em.fork();
    const article = await em.findOneOrFail(Article, id, { shard: 'writer' });
    expect(em.shardOf(article)).toBe('writer');
    const list = await em.find(Article, { views: { $gte: 20 } }, { shard: 'writer', orderBy: { id: 'asc' } });
    expect(list.map(a => a.title)).toEqual(TITLES.filter((_, i) => i * 10 >= 20));
    expect(list.every(a => em.shardOf(a) === 'writer')).toBe(true);

    article.views = 999;
    await em.flush();
    const [row] = await rawQuery(orm, 'reader', 'select views from article where id = ?', [id]);
    expect(Number(row!.views)).toBe(999);
    const again = orm.em.fork();
    expect((await again.findOneOrFail(Article, id)).views).toBe(999);
  });
});
