import { defineEntity, p } from '@mikro-orm/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hash, idGenerator, jump, ShardedMikroORM, type HashStrategy } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { Author, Book, entities, Tag } from './support/entities.ts';
import { Account, Invoice, keyedEntities, logged, QueryLog, tableRows } from './support/keyed.ts';
import { refusal } from './support/refusal.ts';
import { topologies, type Topology } from './support/topology.ts';

// shardBy on real databases: where new entities go, which shards a lookup and a query read (queries counted per
// shard with `onQuery`), the precedence of hand-written choosers, and what is refused before anything is written.

describe.each(['sqlite', 'postgresql'] as const)('shardBy on %s', driver => {
  let topology: Topology;
  let orm: ShardedMikroORM;
  let byId: HashStrategy;
  let byTenant: HashStrategy;
  const log = new QueryLog();
  const shardIds = ['s0', 's1', 's2'];

  beforeAll(async () => {
    topology = topologies[driver]();
    byId = hash({ shards: shardIds });
    byTenant = hash({ shards: shardIds });
    orm = await ShardedMikroORM.init({
      ...topology.shared,
      entities: [...entities, ...keyedEntities],
      shards: logged(topology.shards(3), log),
      pool: { min: 0, max: 2 },
      shardBy: {
        Author: { key: 'id', strategy: byId },
        Book: { parent: 'author' },
        Account: { key: 'tenantId', strategy: byTenant },
        Invoice: { parent: 'account', requireShardKey: true },
      },
    });
    await orm.schema.refresh();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  beforeEach(async () => {
    await orm.schema.clear();
  });

  const authorShard = (id: number) => byId.shardFor(id, { orm, entityName: 'Author' }) as string;
  const tenantShard = (tenant: string) => byTenant.shardFor(tenant, { orm, entityName: 'Account' }) as string;

  async function seedAuthors(count = 12): Promise<void> {
    const em = orm.em.fork();
    for (let id = 1; id <= count; id++) {
      const author = em.create(Author, { id, name: `author-${id}` });
      em.create(Book, { id: id * 10, title: `book-${id}`, author });
      em.create(Book, { id: id * 10 + 1, title: `book-${id}b`, author });
    }
    await em.flush();
  }

  describe('writes', () => {
    it('places each author by its key and each book with its author, with no shardChooser', async () => {
      await seedAuthors();
      const authors = await tableRows(orm, 'author');
      const books = await tableRows(orm, 'book', 'author_id');
      for (const shard of shardIds) {
        expect(authors[shard]!.length).toBeGreaterThan(0);
        for (const id of authors[shard]!) expect(authorShard(Number(id))).toBe(shard);
        for (const authorId of books[shard]!) expect(authorShard(Number(authorId))).toBe(shard);
      }
    });

    it('places a book by its author’s key when the author is a bare reference, and by a lookup when the key is not the id', async () => {
      await seedAuthors(3);
      const em = orm.em.fork();
      em.create(Book, { id: 900, title: 'by reference', author: 2 });
      await em.flush();
      expect((await tableRows(orm, 'book'))[authorShard(2)]).toContain('900');

      const accounts = orm.em.fork();
      accounts.create(Account, { id: 1, tenantId: 'acme', name: 'acme' });
      await accounts.flush();
      const fresh = orm.em.fork();
      fresh.create(Invoice, { id: 1, total: 10, account: 1 }); // the account's id does not tell its shard: it is looked up
      await fresh.flush();
      expect((await tableRows(orm, 'invoice'))[tenantShard('acme')]).toEqual(['1']);
    });

    it('routes insert, insertMany and upsert by the declaration too', async () => {
      const em = orm.em.fork();
      await em.insert(Author, { id: 7, name: 'inserted' });
      await em.insertMany(Author, [
        { id: 8, name: 'a' },
        { id: 9, name: 'b' },
      ]);
      await em.upsert(Account, { id: 3, tenantId: 'globex', name: 'upserted' });
      const authors = await tableRows(orm, 'author');
      for (const id of [7, 8, 9]) expect(authors[authorShard(id)]).toContain(String(id));
      expect((await tableRows(orm, 'account'))[tenantShard('globex')]).toEqual(['3']);
    });

    it('refuses an entity without its key, and a child without its parent, writing nothing', async () => {
      const before = await allRows(orm);
      const em = orm.em.fork();
      em.create(Account, { id: 5, name: 'no tenant' });
      const missing = await refusal(() => em.flush());
      expect(missing.code).toBe('INVALID_SHARD_KEY');
      expect(missing.message).toContain('Account.tenantId');
      expect(missing.message).toContain('Nothing was written');

      const orphan = orm.em.fork();
      orphan.create(Invoice, { id: 5, total: 1 });
      const error = await refusal(() => orphan.flush());
      expect(error.code).toBe('INVALID_SHARD_KEY');
      expect(error.message).toMatch(/lives on the shard of its account.*not set/);
      expect(await allRows(orm)).toEqual(before);
    });

    it('refuses a { shard } that disagrees with the key (SHARD_KEY_MISMATCH), and takes one that agrees', async () => {
      const before = await allRows(orm);
      const wrong = shardIds.find(shard => shard !== authorShard(1))!;
      const em = orm.em.fork();
      em.create(Author, { id: 1, name: 'misplaced' }, { shard: wrong as never });
      const error = await refusal(() => em.flush());
      expect(error.code).toBe('SHARD_KEY_MISMATCH');
      expect(error.message).toContain(`maps to shard "${authorShard(1)}"`);
      expect(await allRows(orm)).toEqual(before);
      await expect(orm.em.fork().insert(Author, { id: 1, name: 'x' }, { shard: wrong as never })).rejects.toMatchObject({ code: 'SHARD_KEY_MISMATCH' });
      expect(await allRows(orm)).toEqual(before);

      const right = orm.em.fork();
      right.create(Author, { id: 1, name: 'placed' }, { shard: authorShard(1) as never });
      await right.flush();
      expect((await tableRows(orm, 'author'))[authorShard(1)]).toEqual(['1']);
    });

    it('refuses a { shard } for a book that is not its author’s shard, even with the author as a bare id', async () => {
      await seedAuthors(6);
      const before = await allRows(orm);
      const other = [2, 3, 4, 5, 6].find(id => authorShard(id) !== authorShard(1))!;
      const em = orm.em.fork();
      em.create(Book, { id: 777, title: 'x', author: 1 }, { shard: authorShard(other) as never });
      const error = await refusal(() => em.flush());
      expect(error.code).toBe('SHARD_KEY_MISMATCH');
      expect(error.message).toContain('Book.author');
      expect(await allRows(orm)).toEqual(before);
    });
    it('refuses a loaded entity whose key or parent changed to another shard (SHARD_KEY_CHANGED), and takes a change within its shard', async () => {
      await seedAuthors(6);
      const em = orm.em.fork();
      em.create(Account, { id: 1, tenantId: 'acme', name: 'a' });
      await em.flush();
      const before = await allRows(orm);
      const elsewhere = ['globex', 'initech', 'umbrella', 'hooli'].find(tenant => tenantShard(tenant) !== tenantShard('acme'))!;
      const same = Array.from({ length: 50 }, (_, i) => `t${i}`).find(tenant => tenantShard(tenant) === tenantShard('acme'))!;

      const moving = orm.em.fork();
      const account = await moving.findOneOrFail(Account, { tenantId: 'acme' });
      account.tenantId = elsewhere;
      const error = await refusal(() => moving.flush());
      expect(error.code).toBe('SHARD_KEY_CHANGED');
      expect(error.message).toContain('Account.tenantId');
      // This fleet cannot move rows: the message says why (the moves themselves are in moves-postgresql.test.ts).
      expect(error.message).toContain(driver === 'sqlite' ? 'is SQLite' : 'no `twoPhaseCommit`');
      expect(await allRows(orm)).toEqual(before);

      const staying = orm.em.fork();
      (await staying.findOneOrFail(Account, { tenantId: 'acme' })).tenantId = same;
      await staying.flush();
      expect(await orm.em.fork().count(Account, { tenantId: same })).toBe(1);

      const other = [2, 3, 4, 5, 6].find(id => authorShard(id) !== authorShard(1))!;
      // A parent given by id becomes a reference on the child's own shard: its key tells where it really is.
      const booksBefore = await allRows(orm);
      const books = orm.em.fork();
      const book = await books.findOneOrFail(Book, 10, { shard: authorShard(1) as never });
      books.assign(book, { author: other });
      expect((await refusal(() => books.flush())).code).toBe('SHARD_KEY_CHANGED');
      // A reference made by the sharded entity manager is on its own shard already: the book's parent is elsewhere now.
      const again = orm.em.fork();
      (await again.findOneOrFail(Book, 10, { shard: authorShard(1) as never })).author = again.getReference(Author, other);
      expect((await refusal(() => again.flush())).code).toBe('SHARD_KEY_CHANGED');
      expect(await allRows(orm)).toEqual(booksBefore);
    });
  });

  describe('reads', () => {
    beforeEach(async () => {
      await seedAuthors();
      const em = orm.em.fork();
      for (const [id, tenant] of [
        [1, 'acme'],
        [2, 'globex'],
        [3, 'initech'],
        [4, 'acme'],
      ] as const) {
        const account = em.create(Account, { id, tenantId: tenant, name: `${tenant}-${id}` });
        em.create(Invoice, { id: id * 10, total: id * 100, account });
      }
      await em.flush();
    });

    it('looks an author up by primary key on its shard alone, with one query', async () => {
      const em = orm.em.fork();
      const { shards, queries } = await log.during(() => em.findOne(Author, 5));
      expect(shards).toEqual([authorShard(5)]);
      expect(queries).toBe(1);
      expect(em.getReference(Author, 6)).toBe(em.getReference(Author, 6));
      expect(em.shardOf(em.getReference(Author, 6))).toBe(authorShard(6));
    });

    it('prunes queries by the key: a value, $in, $eq, $or, $and, through the parent, an entity', async () => {
      const em = orm.em.fork();
      const one = await log.during(() => em.find(Book, { author: 5 }, { orderBy: { id: 'asc' } }));
      expect(one.shards).toEqual([authorShard(5)]);
      const list = await log.during(() => em.count(Book, { author: { $in: [1, 2, 3] } }));
      expect(new Set(list.shards)).toEqual(new Set([1, 2, 3].map(authorShard)));
      const either = await log.during(() => em.find(Author, { $or: [{ id: 4 }, { id: { $eq: 7 } }] }));
      expect(new Set(either.shards)).toEqual(new Set([4, 7].map(authorShard)));
      const nested = await log.during(() => em.find(Book, { author: { id: 8 }, title: { $like: 'book%' } }));
      expect(nested.shards).toEqual([authorShard(8)]);
      const author = await em.findOneOrFail(Author, 9);
      const byEntity = await log.during(() => em.find(Book, { author }));
      expect(byEntity.shards).toEqual([authorShard(9)]);
      const both = await log.during(() => em.find(Author, { $and: [{ id: { $in: [1, 2, 3, 4, 5] } }, { id: 3 }] }));
      expect(both.shards).toEqual([authorShard(3)]);
      const tenant = await log.during(() => em.find(Invoice, { account: { tenantId: 'globex' } }));
      expect(tenant.shards).toEqual([tenantShard('globex')]);
      const none = await log.during(() => em.find(Author, { id: { $in: [] } }));
      expect(none.shards).toHaveLength(1);
    });

    it('answers pruned queries as one database would', async () => {
      const em = orm.em.fork();
      expect((await em.find(Book, { author: { $in: [2, 3] } }, { orderBy: { id: 'desc' } })).map(book => book.id)).toEqual([31, 30, 21, 20]);
      expect(await em.count(Book, { author: 5 })).toBe(2);
      expect((await em.findOneOrFail(Account, { tenantId: 'acme', name: 'acme-4' })).id).toBe(4);
      expect((await em.find(Account, { tenantId: 'acme' }, { orderBy: { id: 'asc' } })).map(account => account.id)).toEqual([1, 4]);
      expect(await em.count(Invoice, { account: { tenantId: { $in: ['acme', 'initech'] } } })).toBe(3);
      expect(await em.nativeUpdate(Invoice, { account: { tenantId: 'globex' } }, { total: 1 })).toBe(1);
    });

    it('reads every shard for a condition without the key, unless requireShardKey refuses it', async () => {
      const em = orm.em.fork();
      const all = await log.during(() => em.count(Book, { title: { $like: 'book-1%' } }));
      expect(new Set(all.shards)).toEqual(new Set(shardIds));
      const lookup = await log.during(() => em.findOne(Book, 50));
      expect(lookup.shards.length).toBeGreaterThan(0);

      for (const run of [
        () => em.find(Invoice, { total: { $gt: 0 } }),
        () => em.count(Invoice),
        () => em.findOne(Invoice, 10),
        () => em.nativeDelete(Invoice, {}),
      ]) {
        const error = await refusal(run);
        expect(error.code).toBe('SHARD_KEY_REQUIRED');
        expect(error.entity).toBe('Invoice');
        expect(error.message).toContain('Invoice.account (-> Account.tenantId)');
      }
      // With the key, or with { shard }, it runs.
      expect(await em.count(Invoice, { account: { tenantId: 'acme' } })).toBe(2);
      expect(await em.count(Invoice, {}, { shard: tenantShard('acme') as never })).toBeGreaterThan(0);
    });
  });

  describe('hand-written choosers', () => {
    it('win where they answer, defer with undefined, and see args.shardKeys', async () => {
      const seen: unknown[] = [];
      const chosen = await ShardedMikroORM.init({
        ...topology.shared,
        entities: [...entities, ...keyedEntities],
        shards: topology.shards(3),
        pool: { min: 0, max: 2 },
        shardBy: { Author: { key: 'id', strategy: byId }, Book: { parent: 'author' }, Account: { key: 'tenantId', strategy: byTenant } },
        shardChooser: ({ entityName }) => (entityName === 'Tag' ? 's0' : undefined),
        queryChooser: ({ entityName, shardKeys }) => {
          seen.push(shardKeys);
          return entityName === 'Author' ? ['s0'] : undefined;
        },
      });
      try {
        const em = chosen.em.fork();
        em.create(Account, { id: 1, tenantId: 'acme', name: 'a' });
        await em.flush();
        expect(em.shardOf(await em.findOneOrFail(Account, { tenantId: 'acme' }))).toBe(tenantShard('acme'));
        await em.find(Book, { author: { $in: [3, 4] } });
        await em.find(Author, { name: 'x' });
        expect(seen).toEqual([['acme'], [3, 4], undefined]);
      } finally {
        await chosen.close(true);
      }
    });
  });
});

const LeftSchema = defineEntity({ name: 'Left', properties: { id: p.integer().primary(), right: () => p.manyToOne(Right).nullable() } });
class Left extends LeftSchema.class {}
LeftSchema.setClass(Left);
const RightSchema = defineEntity({ name: 'Right', properties: { id: p.integer().primary(), left: () => p.manyToOne(Left).nullable() } });
class Right extends RightSchema.class {}
RightSchema.setClass(Right);

describe('shardBy mistakes are refused at init()', () => {
  let topology: Topology;
  const strategy = hash({ shards: ['s0', 's1'] });

  beforeAll(() => {
    topology = topologies.sqlite();
  });

  afterAll(async () => {
    await topology?.dispose();
  });

  const init = (options: object) =>
    ShardedMikroORM.init({ ...topology.shared, entities: [...entities, ...keyedEntities], shards: topology.shards(2), ...options } as Parameters<
      typeof ShardedMikroORM.init
    >[0]);

  it.each([
    [{ shardBy: { Nobody: { key: 'id', strategy } } }, /no shard declares an entity named "Nobody"/],
    [{ shardBy: { Author: { key: 'books', strategy } } }, /shardBy.Author.key "books" is not a stored scalar property/],
    [{ shardBy: { Book: { key: 'author', strategy } } }, /declare \{ parent \} instead/],
    [{ shardBy: { Author: { key: 'id', strategy, parent: 'x' } } }, /either `key` .* or `parent`, not both/],
    [{ shardBy: { Author: { key: 'id' } } }, /shardBy.Author.strategy must be a strategy/],
    [{ shardBy: { Book: { parent: 'author' } } }, /follows its parent Author, which is not in shardBy/],
    [{ shardBy: { Book: { parent: 'title' } } }, /shardBy.Book.parent "title" is not a to-one relation/],
    [{ shardBy: { Author: { key: 'id', strategy: hash({ shards: ['s0', 's9'] }) } } }, /Unknown shard "s9" in shardBy.Author.strategy/],
    [{ shardBy: { Order: { key: 'id', strategy: jump({ shards: ['s0', 's1'] }), ids: idGenerator({ node: 0 }) } } }, /jump strategy, which has no buckets/],
    [{ shardBy: { Order: { key: 'id', strategy: hash({ shards: ['s0'], buckets: 64 }), ids: idGenerator({ node: 0 }) } } }, /carry 1024 buckets.*has 64/],
    [{ shardBy: { Author: { key: 'id', strategy, requireShardKey: 'yes' } } }, /requireShardKey must be true or false/],
    [{ shardBy: [] }, /`shardBy` maps entity names/],
  ])('%#: %o', async (options, message) => {
    expect((await refusal(() => init(options))).message).toMatch(message);
  });

  it('refuses a chain of parents that loops', async () => {
    const error = await refusal(() => init({ entities: [Left, Right], shardBy: { Left: { parent: 'right' }, Right: { parent: 'left' } } }));
    expect(error.message).toMatch(/shardBy.Left follows a chain of parents that leads back to Left/);
  });

  it('takes requireShardKey for every declaration from init(), each one may say otherwise', async () => {
    const orm = await init({ requireShardKey: true, shardBy: { Author: { key: 'id', strategy }, Book: { parent: 'author', requireShardKey: false } } });
    try {
      await orm.schema.refresh();
      const em = orm.em.fork();
      expect((await refusal(() => em.find(Author, { name: 'x' }))).code).toBe('SHARD_KEY_REQUIRED');
      expect(await em.find(Author, { id: 3 })).toEqual([]);
      expect(await em.find(Book, { title: 'x' })).toEqual([]);
    } finally {
      await orm.close(true);
    }
  });

  it('needs a shardChooser or shardBy, and a shardChooser for new entities shardBy does not declare', async () => {
    const none = await ShardedMikroORM.init({ ...topology.shared, entities, shards: topology.shards(2) } as never).catch((error: unknown) => error);
    expect(none).toMatchObject({ code: 'MISSING_CHOOSER' });
    const orm = await init({ shardBy: { Author: { key: 'id', strategy } } });
    try {
      await orm.schema.refresh();
      const em = orm.em.fork();
      em.create(Tag, { id: 1, label: 'x' });
      const error = await refusal(() => em.flush());
      expect(error).toMatchObject({ code: 'MISSING_CHOOSER', entity: 'Tag' });
      expect(error.message).toMatch(/"Tag": there is no `shardChooser`, and it is neither declared in `shardBy` nor bound/);
    } finally {
      await orm.close(true);
    }
  });
});
