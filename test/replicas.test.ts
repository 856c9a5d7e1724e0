/**
 * Read replicas per shard (MikroORM's `replicas`) and read-your-writes, on PostgreSQL. Each shard's "replica" is a
 * database of its own holding other rows than the primary (titles `replica ...` instead of `primary ...`), so every
 * answer shows where its read went: reads go to the replica as MikroORM sends them, `connectionType` chooses, and
 * once an entity manager has written to a shard its reads of that shard go to the primary.
 */
import { defineEntity, p } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ShardedMikroORM, ShardedRequestContext } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL } from './support/topology.ts';
import { adminExecute, rawCount, rawQuery, uniqueName } from './seeds/raw.ts';

const ArticleSchema = defineEntity({
  name: 'Article',
  properties: {
    id: p.integer().primary().autoincrement(false),
    title: p.string(),
    tags: () => p.oneToMany(Tag).mappedBy('article'),
  },
});
class Article extends ArticleSchema.class {}
ArticleSchema.setClass(Article);
const TagSchema = defineEntity({
  name: 'Tag',
  properties: { id: p.integer().primary().autoincrement(false), label: p.string(), article: () => p.manyToOne(Article) },
});
class Tag extends TagSchema.class {}
TagSchema.setClass(Tag);

type Shard = 's0' | 's1';
const names = { s0: uniqueName('p0'), s1: uniqueName('p1'), r0: uniqueName('r0'), r1: uniqueName('r1') };
const home = (id: number): Shard => (id % 2 === 0 ? 's0' : 's1');
/** Ids 1-4 exist on both the primaries and the replicas, with different titles. */
const SEEDED = [1, 2, 3, 4];

function fleet(readYourWrites = true): Promise<ShardedMikroORM<PostgreSqlDriver, Shard>> {
  return ShardedMikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: PG_URL,
    entities: [Article, Tag],
    pool: { min: 0, max: 2 },
    shards: {
      s0: { dbName: names.s0, replicas: [{ name: 'r0', dbName: names.r0 }] },
      s1: { dbName: names.s1, replicas: [{ name: 'r1', dbName: names.r1 }] },
    },
    shardChooser: ({ entity }) => home(entity instanceof Tag ? entity.article.id : (entity as Article).id),
    idChooser: ({ entityName, id }) => (entityName === 'Article' ? [home(Number(id))] : ['s0', 's1']),
    readYourWrites,
  });
}

const titles = (articles: readonly Article[]) => articles.map(a => a.title);

describe('read replicas and read-your-writes (PostgreSQL)', () => {
  let orm: ShardedMikroORM<PostgreSqlDriver, Shard>;
  let created = false;

  beforeAll(async () => {
    await adminExecute(Object.values(names).map(name => `create database "${name}"`));
    created = true;
    // The replicas are filled through a fleet of their own: same tables, other rows.
    const replicas = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      clientUrl: PG_URL,
      entities: [Article, Tag],
      shards: { s0: { dbName: names.r0 }, s1: { dbName: names.r1 } },
      shardChooser: ({ entity }) => home((entity as Article).id),
    });
    await replicas.schema.create();
    const seed = replicas.em.fork();
    SEEDED.forEach(id => seed.create(Article, { id, title: `replica ${id}` }));
    await seed.flush();
    await replicas.close();

    orm = await fleet();
    await orm.schema.create();
    const em = orm.em.fork();
    SEEDED.forEach(id => em.create(Article, { id, title: `primary ${id}` }));
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    if (created) {
      await adminExecute(Object.values(names).map(name => `drop database if exists "${name}" with (force)`));
    }
  });

  it('creates the schema and writes on the primaries only', async () => {
    expect(await rawCount(orm, 's0', 'article')).toBe(2);
    const [row] = await rawQuery(orm, 's0', 'select current_database() as d');
    expect(row!.d).toBe(names.s0);
  });

  it('reads from the replicas as MikroORM sends reads (preferReadReplicas), merged queries included', async () => {
    const em = orm.em.fork();
    expect((await em.findOneOrFail(Article, 2)).title).toBe('replica 2');
    expect(titles(await em.find(Article, {}, { orderBy: { id: 'asc' } }))).toEqual(SEEDED.map(id => `replica ${id}`));
    expect(await em.count(Article, { title: { $like: 'replica%' } })).toBe(4);
    expect(orm.routing.readYourWrites).toBe(true);
  });

  it('reads where { connectionType } says', async () => {
    const em = orm.em.fork();
    expect((await em.findOneOrFail(Article, 1, { connectionType: 'write' })).title).toBe('primary 1');
    expect(titles(await em.find(Article, {}, { orderBy: { id: 'asc' }, connectionType: 'write', refresh: true }))).toEqual(SEEDED.map(id => `primary ${id}`));
    expect(await em.count(Article, { title: { $like: 'primary%' } }, { connectionType: 'write' })).toBe(4);
    expect(titles(await em.find(Article, {}, { orderBy: { id: 'asc' }, connectionType: 'read', refresh: true }))).toEqual(SEEDED.map(id => `replica ${id}`));
  });

  it('reads a shard it has written to from its primary, for the rest of its life; other shards from their replicas', async () => {
    const em = orm.em.fork();
    em.create(Article, { id: 10, title: 'primary 10' });
    await em.flush();
    // s0 was written: its reads go to its primary (which holds article 10); s1's still go to its replica.
    expect((await em.findOneOrFail(Article, 4)).title).toBe('primary 4');
    expect((await em.findOneOrFail(Article, 3)).title).toBe('replica 3');
    expect(titles(await em.find(Article, {}, { orderBy: { id: 'asc' } }))).toEqual(['replica 1', 'primary 2', 'replica 3', 'primary 4', 'primary 10']);
    expect(await em.count(Article, { id: { $gte: 4 } })).toBe(2);
    expect(await em.count(Article, {}, { shard: 's0' })).toBe(3);
    // A call's own connectionType still wins.
    expect(await em.count(Article, {}, { shard: 's0', connectionType: 'read' })).toBe(2);
    // A new entity manager starts on the replicas again.
    expect((await orm.em.fork().findOneOrFail(Article, 4)).title).toBe('replica 4');
    await orm.em.fork().nativeDelete(Article, { id: 10 });
  });

  it('counts native writes and the auto-flush a read starts with as writes', async () => {
    const em = orm.em.fork();
    // It reaches both shards, and changes a row on s1 alone.
    expect(await em.nativeUpdate(Article, { id: 1 }, { title: 'primary 1' })).toBe(1);
    expect((await em.findOneOrFail(Article, 1)).title).toBe('primary 1');
    expect((await em.findOneOrFail(Article, 2)).title).toBe('replica 2');

    const inserting = orm.em.fork();
    await inserting.insert(Article, { id: 12, title: 'primary 12' });
    expect(await inserting.count(Article, {}, { shard: 's0' })).toBe(3);

    // The pending article is written by the query's auto-flush, and the query then reads the primary that has it.
    const pending = orm.em.fork();
    pending.create(Article, { id: 14, title: 'primary 14' });
    expect(titles(await pending.find(Article, { id: { $gte: 12 } }, { orderBy: { id: 'asc' } }))).toEqual(['primary 12', 'primary 14']);
    await orm.em.fork().nativeDelete(Article, { id: { $in: [12, 14] } });
  });

  it('populates and refreshes a written shard from its primary', async () => {
    const em = orm.em.fork();
    const article = await em.findOneOrFail(Article, 2);
    expect(article.title).toBe('replica 2');
    em.create(Tag, { id: 1, label: 'fresh', article });
    await em.flush();
    await em.refresh(article);
    expect(article.title).toBe('primary 2');
    const other = orm.em.fork();
    const again = await other.findOneOrFail(Article, 2, { connectionType: 'write' });
    other.create(Tag, { id: 3, label: 'other', article: again });
    await other.flush();
    const fresh = orm.em.fork();
    const found = await fresh.findOneOrFail(Article, 2);
    fresh.create(Tag, { id: 5, label: 'more', article: found });
    await fresh.flush();
    await fresh.populate(found, ['tags'], { refresh: true });
    expect(found.tags.getItems().map(tag => tag.label)).toEqual(['fresh', 'other', 'more']);
    await orm.em.fork().nativeDelete(Tag, {});
  });

  it('does the same for the request context of ShardedRequestContext', async () => {
    const titlesSeen = await ShardedRequestContext.create(orm.em, async () => {
      const before = (await orm.em.findOneOrFail(Article, 3)).title;
      await orm.em.nativeUpdate(Article, { id: 3 }, { title: 'primary 3' });
      const after = (await orm.em.findOneOrFail(Article, 3, { refresh: true })).title;
      return [before, after];
    });
    expect(titlesSeen).toEqual(['replica 3', 'primary 3']);
  });

  it('leaves reads where MikroORM sends them with readYourWrites: false', async () => {
    const plain = await fleet(false);
    try {
      expect(plain.routing.readYourWrites).toBe(false);
      const em = plain.em.fork();
      em.create(Article, { id: 16, title: 'primary 16' });
      await em.flush();
      expect((await em.findOneOrFail(Article, 4)).title).toBe('replica 4');
      expect(await em.count(Article, {}, { shard: 's0' })).toBe(2);
      await em.nativeDelete(Article, { id: 16 });
    } finally {
      await plain.close(true);
    }
  });
});
