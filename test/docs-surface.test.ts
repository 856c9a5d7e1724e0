import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, EntityRepository, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError } from 'mikro-orm-sharding';
import { rowsPerShard } from './support/fleet.ts';

// The samples of docs/getting-started.md on insert/upsert, repositories, filters, typed ids and em.on(), run as
// written there (entities, fleet and data of the page).

class BookRepository extends EntityRepository<Book> {
  bestSellers(limit: number) {
    return this.find({}, { orderBy: { sales: 'desc', id: 'asc' }, limit });
  }
}

const AuthorSchema = defineEntity({
  name: 'Author',
  properties: {
    id: p.integer().primary().autoincrement(false),
    name: p.string(),
    books: () => p.oneToMany(Book).mappedBy('author'),
  },
});
class Author extends AuthorSchema.class {}
AuthorSchema.setClass(Author);

const BookSchema = defineEntity({
  name: 'Book',
  repository: () => BookRepository,
  properties: {
    id: p.integer().primary().autoincrement(false),
    title: p.string(),
    sales: p.integer(),
    author: () => p.manyToOne(Author),
  },
});
class Book extends BookSchema.class {}
BookSchema.setClass(Book);

const dir = mkdtempSync(join(tmpdir(), 'mos-docs-surface-'));
const shardIds = ['s0', 's1', 's2', 's3'] as const;
const authorShard = (authorId: number) => shardIds[authorId % shardIds.length]!;

const open = () =>
  ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Author, Book],
    shards: {
      s0: { dbName: join(dir, 's0.db') },
      s1: { dbName: join(dir, 's1.db') },
      s2: { dbName: join(dir, 's2.db') },
      s3: { dbName: join(dir, 's3.db') },
    },
    shardChooser: ({ entity, em }) => (entity instanceof Book ? (em.shardOf(entity.author) ?? authorShard(entity.author.id)) : authorShard(entity.id)),
    idChooser: ({ entityName, id }) => (entityName === 'Author' ? [authorShard(Number(id))] : shardIds),
  });
let orm: Awaited<ReturnType<typeof open>>;

beforeAll(async () => {
  orm = await open();
  await orm.schema.create();
  const em = orm.em.fork();
  const ursula = em.create(Author, { id: 1, name: 'Ursula K. Le Guin' });
  em.create(Book, { id: 100, title: 'The Dispossessed', sales: 310, author: ursula });
  em.create(Book, { id: 101, title: 'The Lathe of Heaven', sales: 120, author: ursula });
  const octavia = em.create(Author, { id: 2, name: 'Octavia E. Butler' });
  em.create(Book, { id: 200, title: 'Kindred', sales: 540, author: octavia });
  em.create(Author, { id: 3, name: 'Stanisław Lem' }, { shard: 's0' });
  await em.flush();
});

afterAll(async () => {
  await orm?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('getting-started samples of the MikroORM surface', () => {
  it('insert and upsert', async () => {
    const em = orm.em.fork();
    await em.upsert(Book, { id: 102, title: 'The Word for World Is Forest', sales: 80, author: 1 }); // with Ursula, on s1
    const ids = await em.insertMany(Author, [
      { id: 5, name: 'N. K. Jemisin' },
      { id: 6, name: 'Ann Leckie' },
    ]);
    const [kindred, dawn] = await em.upsertMany(Book, [
      { id: 200, title: 'Kindred', sales: 541, author: 2 },
      { id: 201, title: 'Dawn', sales: 90, author: 2 },
    ]);
    expect(ids).toEqual([5, 6]);
    expect([kindred!.sales, em.shardOf(dawn!)]).toEqual([541, 's2']);
    expect(await rowsPerShard(orm, 'book')).toEqual({ s0: 0, s1: 3, s2: 2, s3: 0 });
    expect(await rowsPerShard(orm, 'author')).toEqual({ s0: 1, s1: 2, s2: 2, s3: 0 });
  });

  it('repositories', async () => {
    const em = orm.em.fork();
    const books = em.getRepository(Book);
    expect(books).toBeInstanceOf(BookRepository);
    expect((await books.bestSellers(2)).map(book => book.title)).toEqual(['Kindred', 'The Dispossessed']);
    expect(await books.count({ sales: { $gt: 100 } })).toBe(3);
    expect(books.getEntityManager()).toBe(em);
  });

  it('filters', async () => {
    const filtered = orm.em.fork();
    filtered.addFilter({ name: 'bestSellers', entity: [Book], cond: args => ({ sales: { $gte: args.min } }) });
    filtered.setFilterParams('bestSellers', { min: 100 });
    expect((await filtered.find(Book, {}, { orderBy: { sales: 'desc' } })).map(book => book.id)).toEqual([200, 100, 101]);
  });

  it('typed ids, { shard } on refresh, em.on()', async () => {
    const em = orm.em.fork();
    // @ts-expect-error 's9' is not a shard of this fleet
    expect(() => em.on('s9')).toThrow(ShardingError);
    const copy = await em.refresh(Object.assign(new Author(), { id: 2 }), { shard: 's2' });
    expect(copy?.name).toBe('Octavia E. Butler');
    const lemBooks = await em.on('s0').createQueryBuilder(Book).where({ author: 3 }).getResultList();
    const rows = await em.on('s1').getConnection().execute('select count(*) as n from book');
    expect([lemBooks, Number(rows[0]!.n)]).toEqual([[], 3]);
  });
});
