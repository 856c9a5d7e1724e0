import { EntityRepository, MikroORM, NotFoundError, Reference, helper, wrap } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedRequestContext, ShardingError, type ShardChooser, type ShardedEntityManager, type ShardedMikroORM } from 'mikro-orm-sharding';
import { Author, Book, entities, Tag } from './support/entities.ts';
import { openFleet, rowsPerShard, seedRows, shardChooser, shardOfId } from './support/fleet.ts';
import { Review, ReviewRepository } from './support/reviews.ts';
import type { Topology } from './support/topology.ts';

const allEntities = [...entities, Review];

/** Reviews follow their book; two author names stand for a chooser that fails. */
const chooser: ShardChooser = args => {
  const { entity, em } = args;
  if (entity instanceof Review) {
    return em.shardOf(entity.book) ?? shardOfId(entity.book.id);
  }
  if (entity instanceof Author && entity.name === 'chooser-throws') {
    throw new Error('directory is down');
  }
  if (entity instanceof Author && entity.name === 'chooser-unknown') {
    return 'nope';
  }
  return shardChooser(args);
};

function seed(em: { create: ShardedEntityManager['create'] }): void {
  for (const row of seedRows()) {
    em.create(Author, { id: row.id, name: row.name, born: row.born, rating: row.rating, books: row.books.map(book => ({ ...book })) } as never);
  }
}

const ids = (list: readonly { id: number }[]) => list.map(item => item.id);

/**
 * The MikroORM surface a service reaches for beyond find/flush: insert and upsert routed like new entities,
 * repositories (custom classes too), filters on every shard, typed references, populate and refresh. Answers are
 * compared with one plain MikroORM database holding the same rows where MikroORM answers.
 */
export function describeSurface(makeTopology: () => Topology): void {
  let topology: Topology;
  let orm: ShardedMikroORM;
  let reference: MikroORM;

  beforeAll(async () => {
    topology = makeTopology();
    orm = await openFleet(topology, { entities: allEntities, shardChooser: chooser });
    reference = await MikroORM.init({ ...topology.shared, ...topology.database('reference'), entities: allEntities });
    await reference.schema.refresh();
    const em = orm.em.fork();
    seed(em);
    await em.flush();
    const plain = reference.em.fork();
    seed(plain as never);
    await plain.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await reference?.close(true);
    await topology?.dispose();
  });

  /** Rows per shard of every table, counted with raw SQL. */
  async function counts(): Promise<Record<string, Record<string, number>>> {
    return { author: await rowsPerShard(orm, 'author'), book: await rowsPerShard(orm, 'book'), review: await rowsPerShard(orm, 'review') };
  }

  /** Where a row is, by raw SQL on every shard: the shards holding it. */
  async function shardsHolding(table: string, id: number): Promise<string[]> {
    const found: string[] = [];
    for (const shard of orm.shardIds) {
      const rows = await orm.shard(shard).em.fork().getConnection().execute(`select id from ${table} where id = ${id}`);
      if (rows.length > 0) {
        found.push(shard);
      }
    }
    return found;
  }

  /** Runs a write that must fail with `code` before writing anything: rows on every shard are the same after. */
  async function expectNothingWritten(write: (em: ShardedEntityManager) => Promise<unknown>, code: string): Promise<ShardingError> {
    const before = await counts();
    const error = await write(orm.em.fork()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ShardingError);
    expect((error as ShardingError).code).toBe(code);
    expect(await counts()).toEqual(before);
    return error as ShardingError;
  }

  describe('insert and insertMany', () => {
    it('writes a row where the shard chooser puts the same data, returning its primary key as MikroORM does', async () => {
      const em = orm.em.fork();
      expect(await em.insert(Author, { id: 100, name: 'ins-100' })).toBe(await reference.em.fork().insert(Author, { id: 100, name: 'ins-100' }));
      // A book given its author's primary key goes where em.create(Book, ...) would: with its author.
      expect(await em.insert(Book, { id: 1000, title: 'ins-book', author: 100 })).toBe(1000);
      expect(await shardsHolding('author', 100)).toEqual([shardOfId(100)]);
      expect(await shardsHolding('book', 1000)).toEqual([shardOfId(100)]);
      // Like MikroORM's insert, nothing becomes managed.
      expect(await em.count(Author, { id: 100 })).toBe(1);
    });

    it('groups rows per shard, one insertMany each, and returns the primary keys in input order', async () => {
      const order = [105, 101, 103, 102, 106, 104];
      const pks = await orm.em.fork().insertMany(
        Author,
        order.map(id => ({ id, name: `ins-${id}` })),
      );
      expect(pks).toEqual(order);
      for (const id of order) {
        expect(await shardsHolding('author', id)).toEqual([shardOfId(id)]);
      }
    });

    it('inserts entity instances, which then know their shard', async () => {
      const em = orm.em.fork();
      const authors = [107, 108].map(id => Object.assign(new Author(), { id, name: `ins-${id}` }));
      expect(await em.insertMany(authors)).toEqual([107, 108]);
      expect(authors.map(author => em.shardOf(author))).toEqual([shardOfId(107), shardOfId(108)]);
      const one = Object.assign(new Author(), { id: 110, name: 'ins-110' });
      expect(await em.insert(one)).toBe(110);
      expect(await shardsHolding('author', 110)).toEqual([shardOfId(110)]);
    });

    it('{ shard } wins over the chooser', async () => {
      expect(shardOfId(109)).not.toBe('s2');
      await orm.em.fork().insert(Author, { id: 109, name: 'pinned' }, { shard: 's2' });
      expect(await shardsHolding('author', 109)).toEqual(['s2']);
      expect(await orm.em.fork().insertMany(Author, [], { shard: 's0' })).toEqual([]);
    });
  });

  describe('upsert and upsertMany', () => {
    it('inserts, then updates in place, on the chooser’s shard; the entity is managed on its shard’s fork', async () => {
      const em = orm.em.fork();
      const first = await em.upsert(Author, { id: 120, name: 'up-1' });
      const plain = await reference.em.fork().upsert(Author, { id: 120, name: 'up-1' });
      expect(first).toBeInstanceOf(Author);
      expect(wrap(first).toObject()).toEqual(wrap(plain).toObject());
      expect(em.shardOf(first)).toBe(shardOfId(120));
      expect(helper(first).__em).toBe(em.on(shardOfId(120)));
      expect(await em.findOne(Author, 120)).toBe(first);
      const again = await orm.em.fork().upsert(Author, { id: 120, name: 'up-2' });
      expect(again.name).toBe('up-2');
      expect(await shardsHolding('author', 120)).toEqual([shardOfId(120)]);
      expect((await orm.em.fork().findOneOrFail(Author, 120)).name).toBe('up-2');
    });

    it('upserts many across shards, returning managed entities in input order like one database', async () => {
      await orm.em.fork().insert(Author, { id: 121, name: 'old-121' });
      await reference.em.fork().insert(Author, { id: 121, name: 'old-121' });
      const rows = [125, 121, 123, 122].map(id => ({ id, name: `many-${id}` }));
      const em = orm.em.fork();
      const upserted = await em.upsertMany(Author, rows);
      const plain = await reference.em.fork().upsertMany(Author, rows);
      expect(upserted.map(author => wrap(author).toObject())).toEqual(plain.map(author => wrap(author).toObject()));
      expect(upserted.map(author => em.shardOf(author))).toEqual(rows.map(row => shardOfId(row.id)));
      for (const row of rows) {
        expect(await shardsHolding('author', row.id)).toEqual([shardOfId(row.id)]);
      }
    });

    // Tags, not authors: on PostgreSQL, MikroORM's upsert reads a NULL decimal back as the string 'null', and the next
    // flush of that entity fails (plain MikroORM too).
    it('upserts an entity instance, and data for an entity this entity manager already holds, as MikroORM does', async () => {
      const steps = async (em: Pick<ShardedEntityManager, 'upsert' | 'findOneOrFail' | 'flush'>, fresh: () => Pick<ShardedEntityManager, 'findOneOrFail'>) => {
        const made = Object.assign(new Tag(), { id: 130, label: 'instance' });
        const upserted = await em.upsert(made);
        const loaded = await em.findOneOrFail(Tag, 130);
        const again = await em.upsert(Tag, { id: 130, label: 'again' });
        const stored = (await fresh().findOneOrFail(Tag, 130)).label;
        again.label = 'changed';
        await em.flush();
        return { made: upserted === made, same: again === loaded, label: again.label, stored, flushed: (await fresh().findOneOrFail(Tag, 130)).label };
      };
      const em = orm.em.fork();
      const sharded = await steps(em, () => orm.em.fork());
      expect(sharded).toEqual(await steps(reference.em.fork() as never, () => reference.em.fork() as never));
      expect(sharded).toMatchObject({ made: true, same: true, flushed: 'changed' });
      expect(em.shardOf(await em.findOneOrFail(Tag, 130))).toBe(shardOfId(130));
      expect(await shardsHolding('tag', 130)).toEqual([shardOfId(130)]);
    });

    it('shows the chooser a related entity given by key as the one this entity manager holds', async () => {
      const em = orm.em.fork();
      const book = await em.findOneOrFail(Book, 61); // author 6: s0, while the review chooser's fallback would say s1
      expect(await em.insert(Review, { id: 10, stars: 2, book: 61 })).toBe(10);
      const review = await em.upsert(Review, { id: 11, stars: 3, book: book.id });
      expect(em.shardOf(review)).toBe(shardOfId(6));
      expect(await shardsHolding('review', 10)).toEqual([shardOfId(6)]);
      expect(await shardsHolding('review', 11)).toEqual([shardOfId(6)]);
      await orm.em.fork().nativeDelete(Review, { id: { $in: [10, 11] } });
    });

    it('routes the documented sample: a book upserted with its author’s key lands with its author', async () => {
      const book = await orm.em.fork().upsert(Book, { id: 1100, title: 'Exhalation', author: 7 });
      expect(book.author.id).toBe(7);
      expect(await shardsHolding('book', 1100)).toEqual([shardOfId(7)]);
    });
  });

  describe('insert and upsert write nothing on bad input', () => {
    it('a chooser answering an unknown shard (UNKNOWN_SHARD), for any row of the call', async () => {
      await expectNothingWritten(
        em =>
          em.insertMany(Author, [
            { id: 140, name: 'fine' },
            { id: 141, name: 'chooser-unknown' },
          ]),
        'UNKNOWN_SHARD',
      );
      await expectNothingWritten(
        em =>
          em.upsertMany(Author, [
            { id: 140, name: 'fine' },
            { id: 141, name: 'chooser-unknown' },
          ]),
        'UNKNOWN_SHARD',
      );
      await expectNothingWritten(em => em.insert(Author, { id: 140, name: 'fine' }, { shard: 'nope' }), 'UNKNOWN_SHARD');
    });

    it('a chooser that throws (CHOOSER_FAILED), naming the row', async () => {
      const error = await expectNothingWritten(
        em =>
          em.upsertMany(Author, [
            { id: 142, name: 'fine' },
            { id: 143, name: 'chooser-throws' },
          ]),
        'CHOOSER_FAILED',
      );
      expect(error.entity).toBe('Author#143');
      await expectNothingWritten(
        em =>
          em.insertMany(Author, [
            { id: 142, name: 'fine' },
            { id: 143, name: 'chooser-throws' },
          ]),
        'CHOOSER_FAILED',
      );
    });

    it('a row referencing an entity on another shard (CROSS_SHARD_REFERENCE)', async () => {
      const error = await expectNothingWritten(async em => {
        const author = await em.findOneOrFail(Author, 4); // s1
        await em.upsertMany(
          Book,
          [
            { id: 1200, title: 'fine', author: 6 },
            { id: 1201, title: 'stray', author },
          ],
          { shard: 's0' },
        );
      }, 'CROSS_SHARD_REFERENCE');
      expect(error.message).toMatch(/Book#1201.*"s0".*Author#4.*"s1"/);
      await expectNothingWritten(
        async em => em.insert(Book, { id: 1202, title: 'stray', author: await em.findOneOrFail(Author, 4) }, { shard: 's2' }),
        'CROSS_SHARD_REFERENCE',
      );
      // By key: the entity manager holds author 4, so it knows where it lives.
      await expectNothingWritten(async em => {
        await em.findOneOrFail(Author, 4);
        await em.insertMany(
          Book,
          [
            { id: 1203, title: 'fine', author: 6 },
            { id: 1204, title: 'stray', author: 4 },
          ],
          { shard: 's0' },
        );
      }, 'CROSS_SHARD_REFERENCE');
    });

    it('{ shard } naming another shard than the entity’s own (SHARD_MISMATCH)', async () => {
      await expectNothingWritten(async em => em.upsert(await em.findOneOrFail(Author, 4), undefined, { shard: 's0' }), 'SHARD_MISMATCH');
    });
  });

  describe('repositories', () => {
    it('gives MikroORM’s repository over the sharded entity manager, answering like one database', async () => {
      const em = orm.em.fork();
      const books = em.getRepository(Book);
      const plain = reference.em.fork().getRepository(Book);
      expect(books).toBeInstanceOf(EntityRepository);
      expect(books.getEntityManager()).toBe(em);
      expect(em.getRepository(Book)).toBe(books);
      expect(em.repo(Book)).toBe(books);
      const where = { id: { $lte: 300 }, price: { $ne: null } };
      const options = { orderBy: { price: 'desc', id: 'asc' }, limit: 7, offset: 2 } as const;
      expect(ids(await books.find(where, options))).toEqual(ids(await plain.find(where, options)));
      expect(ids(await books.findAll({ where, orderBy: { title: 'asc', id: 'asc' } }))).toEqual(
        ids(await plain.findAll({ where, orderBy: { title: 'asc', id: 'asc' } })),
      );
      const [page, total] = await books.findAndCount(where, options);
      const [plainPage, plainTotal] = await plain.findAndCount(where, options);
      expect([ids(page), total]).toEqual([ids(plainPage), plainTotal]);
      expect(await books.count(where)).toBe(await plain.count(where));
      expect((await books.findOneOrFail(61)).title).toBe((await plain.findOneOrFail(61)).title);
      expect(await books.findOne(424242)).toBeNull();
      await expect(books.findOneOrFail(424242)).rejects.toBeInstanceOf(NotFoundError);
      const ref = books.getReference(61, { wrapped: true });
      expect(Reference.isReference(ref)).toBe(true); // an ambiguous book id: the identity map tells its shard
      expect(em.shardOf(ref)).toBe(shardOfId(6));
    });

    it('writes through the repository: create + flush, insert, upsert, nativeUpdate and nativeDelete, routed', async () => {
      const em = orm.em.fork();
      const authors = em.getRepository(Author);
      const created = authors.create({ id: 150, name: 'repo-created' });
      await em.flush();
      expect(em.shardOf(created)).toBe(shardOfId(150));
      expect(await authors.insert({ id: 151, name: 'repo-inserted' })).toBe(151);
      expect(
        await authors.insertMany([
          { id: 153, name: 'repo-inserted' },
          { id: 152, name: 'repo-inserted' },
        ]),
      ).toEqual([153, 152]);
      const upserted = await authors.upsert({ id: 154, name: 'repo-upserted' });
      expect(em.shardOf(upserted)).toBe(shardOfId(154));
      expect(
        ids(
          await authors.upsertMany([
            { id: 156, name: 'repo-upserted' },
            { id: 155, name: 'repo-upserted' },
          ]),
        ),
      ).toEqual([156, 155]);
      for (const id of [150, 151, 152, 153, 154, 155, 156]) {
        expect(await shardsHolding('author', id)).toEqual([shardOfId(id)]);
      }
      expect(await authors.nativeUpdate({ name: 'repo-inserted' }, { born: 2001 })).toBe(3);
      expect(await authors.count({ born: 2001 })).toBe(3);
      expect(await authors.nativeDelete({ name: { $like: 'repo-%' } })).toBe(7);
      expect(await authors.count({ name: { $like: 'repo-%' } })).toBe(0);
    });

    it('populates and assigns through the repository, each entity on its own shard', async () => {
      const em = orm.em.fork();
      const authors = em.getRepository(Author);
      const some = await authors.find({ id: { $in: [2, 3, 5, 6] } }, { orderBy: { id: 'asc' } });
      const populated = await authors.populate(some, ['books']);
      expect(populated).toBe(some);
      for (const author of some) {
        expect(author.books.isInitialized()).toBe(true);
        expect(ids(author.books.getItems()).sort()).toEqual(
          seedRows()
            [author.id - 1]!.books.map(book => book.id)
            .sort(),
        );
      }
      const tags = em.getRepository(Tag);
      const mine = await tags.upsert({ id: 170, label: 'assign-me' });
      tags.assign(mine, { label: 'assigned' });
      await em.flush();
      expect((await orm.em.fork().findOneOrFail(Tag, 170)).label).toBe('assigned');
      expect(authors.canPopulate('books')).toBe(true);
    });

    it('constructs your repository class, whose own methods run sharded', async () => {
      const em = orm.em.fork();
      const plainEm = reference.em.fork();
      for (const [id, bookId, stars] of [
        [1, 61, 5],
        [2, 20, 3],
        [3, 30, 4],
        [4, 50, 4],
        [5, 110, 1],
      ] as const) {
        em.getRepository(Review).create({ id, stars, book: await em.findOneOrFail(Book, bookId) });
        plainEm.create(Review, { id, stars, book: await plainEm.findOneOrFail(Book, bookId) });
      }
      await em.flush();
      await plainEm.flush();
      const reviews = em.getRepository(Review);
      expect(reviews).toBeInstanceOf(ReviewRepository);
      expect(reviews.getEntityManager()).toBe(em);
      const plain = reference.em.fork().getRepository(Review);
      expect(ids(await reviews.best(2))).toEqual(ids(await plain.best(2)));
      expect(await reviews.averageStars()).toBe(await plain.averageStars());
      for (const review of await reviews.findAll()) {
        expect(em.shardOf(review)).toBe(em.shardOf(review.book));
      }
      expect(() => reviews.countWithQueryBuilder()).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_OPERATION' }));
    });

    it('on the global entity manager, acts on the request context’s entity manager', async () => {
      const books = orm.em.getRepository(Book);
      await expect(books.count()).rejects.toThrow(/global EntityManager/);
      const counted = await ShardedRequestContext.create(orm.em, () => books.count({ id: { $lte: 300 } }));
      expect(counted).toBe(await reference.em.fork().count(Book, { id: { $lte: 300 } }));
    });
  });

  describe('filters', () => {
    const seeded = { id: { $lte: 30 } };
    const byId = { orderBy: { id: 'asc' } } as const;
    const bornEarly = { name: 'bornEarly', entity: [Author], cond: { born: { $lt: 1970 } } };
    const bornAfter = { name: 'bornAfter', entity: [Author], cond: (args: Record<string, number>) => ({ born: { $gt: args.year } }) };

    it('addFilter applies on every shard fork, those made before and after, like one database', async () => {
      const em = orm.em.fork();
      await em.count(Author, {}, { shard: 's1' }); // the s1 fork exists before the filter
      em.addFilter(bornEarly);
      const plain = reference.em.fork();
      plain.addFilter(bornEarly);
      const expected = ids(await plain.find(Author, seeded, byId));
      expect(expected.length).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(30);
      expect(ids(await em.find(Author, seeded, byId))).toEqual(expected);
      expect(await em.count(Author, seeded)).toBe(expected.length);
      expect(ids(await em.find(Author, seeded, { ...byId, filters: false }))).toHaveLength(30);
      expect(ids(await orm.em.fork().find(Author, seeded, byId))).toHaveLength(30);
    });

    it('setFilterParams on every shard, getFilterParams, and fork() inheriting both as MikroORM’s fork does', async () => {
      const em = orm.em.fork();
      em.addFilter(bornAfter);
      em.setFilterParams('bornAfter', { year: 1970 });
      expect(em.getFilterParams('bornAfter')).toEqual({ year: 1970 });
      const plain = reference.em.fork();
      plain.addFilter(bornAfter);
      plain.setFilterParams('bornAfter', { year: 1970 });
      expect(ids(await em.find(Author, seeded, byId))).toEqual(ids(await plain.find(Author, seeded, byId)));
      const child = em.fork();
      expect(child.getFilterParams('bornAfter')).toEqual({ year: 1970 });
      child.setFilterParams('bornAfter', { year: 1980 });
      const plainChild = plain.fork();
      plainChild.setFilterParams('bornAfter', { year: 1980 });
      expect(ids(await child.find(Author, seeded, byId))).toEqual(ids(await plainChild.find(Author, seeded, byId)));
      expect(em.getFilterParams('bornAfter')).toEqual({ year: 1970 });
      expect(await em.count(Author, seeded)).toBe(await plain.count(Author, seeded));
    });

    it('on the global entity manager, reaches forks and request contexts made afterwards', async () => {
      const fleet = await openFleet(topology, { entities: allEntities, shardChooser: chooser }, false);
      try {
        fleet.em.addFilter(bornEarly);
        const plain = reference.em.fork();
        plain.addFilter(bornEarly);
        const expected = ids(await plain.find(Author, seeded, byId));
        expect(ids(await fleet.em.fork().find(Author, seeded, byId))).toEqual(expected);
        expect(ids(await ShardedRequestContext.create(fleet.em, () => fleet.em.find(Author, seeded, byId)))).toEqual(expected);
        expect(ids(await fleet.shard('s2').em.fork().find(Author, seeded, byId))).toEqual(expected.filter(id => shardOfId(id) === 's2'));
      } finally {
        await fleet.close();
      }
    });
  });

  describe('references, populate and refresh', () => {
    it('getReference with { wrapped: true } gives a Ref on the entity’s shard', async () => {
      const em = orm.em.fork();
      const ref = em.getReference(Author, 8, { wrapped: true });
      expect(Reference.isReference(ref)).toBe(true);
      expect(em.shardOf(ref)).toBe(shardOfId(8));
      expect((await ref.load())?.name).toBe(seedRows()[7]!.name);
      expect(ref.unwrap()).toBe(em.getReference(Author, 8));
      expect(() => em.getReference(Author, 'x@example.com', { key: 'name' })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_OPERATION' }));
      expect(em.getReference(Author, seedRows()[2]!.name, { key: 'name', shard: shardOfId(3) })).toBeInstanceOf(Author);
    });

    it('populate resolves to what it was given: one entity, or the list', async () => {
      const em = orm.em.fork();
      const author = await em.findOneOrFail(Author, 12);
      const populated = await em.populate(author, ['books']);
      expect(populated).toBe(author);
      expect(populated.books.isInitialized()).toBe(true);
      const list = await em.find(Book, { id: { $in: [61, 20] } });
      expect(await em.populate(list, ['author'])).toBe(list);
    });

    it('refresh with { shard } reloads an entity whose shard is not known; refreshOrFail throws MikroORM’s NotFoundError', async () => {
      const em = orm.em.fork();
      const detached = Object.assign(new Author(), { id: 9 });
      await expect(em.refresh(detached)).rejects.toMatchObject({ code: 'UNPLACED_ENTITY' });
      expect(await em.refresh(detached, { shard: shardOfId(9) })).toBe(detached);
      expect(detached.name).toBe(seedRows()[8]!.name);
      expect(await em.refresh(Object.assign(new Author(), { id: 9 }), { shard: 's1' === shardOfId(9) ? 's2' : 's1' })).toBeNull();
      const loaded = await em.findOneOrFail(Author, 10);
      loaded.name = 'changed';
      expect((await em.refresh(loaded, { shard: shardOfId(10) }))?.name).toBe(seedRows()[9]!.name);
      await expect(em.refresh(loaded, { shard: shardOfId(11) })).rejects.toMatchObject({ code: 'SHARD_MISMATCH' });
      const gone = await em.upsert(Author, { id: 160, name: 'gone' });
      await orm.em.fork().nativeDelete(Author, { id: 160 });
      await expect(em.refreshOrFail(gone)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('refuses what cannot run across shards with UNSUPPORTED_OPERATION, naming em.on(shard)', async () => {
      const em = orm.em.fork();
      expect(() => em.createQueryBuilder()).toThrow(/em\.on\(shard\)\.createQueryBuilder/);
      expect(() => em.stream()).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_OPERATION' }));
      expect(() => em.findByCursor()).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_OPERATION' }));
      const all = em.getRepository(Author).stream();
      await expect(all.next()).rejects.toMatchObject({ code: 'UNSUPPORTED_OPERATION' });
    });
  });
}
