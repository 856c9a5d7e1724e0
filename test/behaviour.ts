import { helper, NotFoundError, type FilterQuery, type MikroORM } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedRequestContext, ShardingError, type ShardedEntityManager, type ShardedMikroORM } from 'mikro-orm-sharding';
import { Author, Book, Tag } from './support/entities.ts';
import { openFleet, openReference, rowsPerShard, seedRows, shardOfId, SHARDS } from './support/fleet.ts';
import type { Topology } from './support/topology.ts';

function writeSeed(em: Pick<ShardedEntityManager, 'create'>, rows = seedRows()): void {
  for (const row of rows) {
    em.create(Author, { id: row.id, name: row.name, born: row.born, rating: row.rating, books: row.books.map(book => ({ ...book })) } as never);
  }
}

/**
 * The behaviour every topology must show. Answers of merged queries are compared with the same query on one plain
 * MikroORM database holding the same rows.
 */
export function describeBehaviour(makeTopology: () => Topology): void {
  let topology: Topology;
  let orm: ShardedMikroORM;
  let reference: MikroORM;

  beforeAll(async () => {
    topology = makeTopology();
    orm = await openFleet(topology);
    reference = await openReference(topology);
    const em = orm.em.fork();
    writeSeed(em);
    await em.flush();
    const plain = reference.em.fork();
    writeSeed(plain as never);
    await plain.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await reference?.close(true);
    await topology?.dispose();
  });

  describe('writes', () => {
    it('routes each new entity by the shard chooser, and related new entities with it', async () => {
      const rows = seedRows();
      const expected = (pick: (id: number) => number) => {
        const counts: Record<string, number> = { s0: 0, s1: 0, s2: 0 };
        rows.forEach(row => (counts[shardOfId(row.id)]! += pick(row.id)));
        return counts;
      };
      expect(await rowsPerShard(orm, 'author')).toEqual(expected(() => 1));
      expect(await rowsPerShard(orm, 'book')).toEqual(expected(id => rows[id - 1]!.books.length));
      for (const shard of orm.shardIds) {
        const stray = await orm.shard(shard).em.fork().getConnection().execute('select count(*) as c from book b join author a on a.id = b.author_id');
        const books = (await rowsPerShard(orm, 'book'))[shard];
        expect(Number(stray[0].c)).toBe(books);
      }
    });

    it('remembers the shard: unknown while new, the chosen one after flush, the loading one after a read', async () => {
      const em = orm.em.fork();
      const author = em.create(Author, { id: 1000, name: 'remember' });
      expect(em.shardOf(author)).toBeUndefined();
      await em.flush();
      expect(em.shardOf(author)).toBe(shardOfId(1000));
      const loaded = await orm.em.fork().findOneOrFail(Author, 1000);
      expect(orm.em.fork().shardOf(loaded)).toBe(shardOfId(1000));
      const again = orm.em.fork();
      await again.remove(await again.findOneOrFail(Author, 1000)).flush();
      expect(await orm.em.fork().findOne(Author, 1000)).toBeNull();
    });

    it('updates and removes a loaded entity on its own shard', async () => {
      const em = orm.em.fork();
      em.create(Author, { id: 1001, name: 'before' });
      await em.flush();
      const fork = orm.em.fork();
      const author = await fork.findOneOrFail(Author, 1001);
      author.name = 'after';
      await fork.flush();
      const [row] = await orm.shard(shardOfId(1001)).em.fork().getConnection().execute('select name from author where id = 1001');
      expect(row.name).toBe('after');
      fork.remove(author);
      await fork.flush();
      expect((await orm.shard(shardOfId(1001)).em.fork().getConnection().execute('select * from author where id = 1001')).length).toBe(0);
    });

    it('writes nothing for an entity persisted and removed again before the flush', async () => {
      const before = await rowsPerShard(orm, 'author');
      const em = orm.em.fork();
      const author = em.create(Author, { id: 6000, name: 'never' });
      em.remove(author);
      await em.flush();
      expect(await rowsPerShard(orm, 'author')).toEqual(before);
      expect(em.shardOf(author)).toBeUndefined();
    });

    it('updates and deletes by condition on every chosen shard, summing the rows affected', async () => {
      const em = orm.em.fork();
      for (const id of [5001, 5002, 5003]) {
        em.create(Author, { id, name: 'bulk', born: 1900 });
      }
      await em.flush();
      expect(await orm.em.fork().nativeUpdate(Author, { name: 'bulk' }, { born: 1901 })).toBe(3);
      expect(await orm.em.fork().count(Author, { name: 'bulk', born: 1901 })).toBe(3);
      const stale = await em.findOneOrFail(Author, 5002);
      stale.born = 1800;
      expect((await em.refresh(stale))?.born).toBe(1901);
      expect(await orm.em.fork().nativeDelete(Author, { name: 'bulk' }, { shard: shardOfId(5001) })).toBe(1);
      expect(await orm.em.fork().nativeDelete(Author, { name: 'bulk' })).toBe(2);
      expect(await orm.em.fork().count(Author, { name: 'bulk' })).toBe(0);
      await expect(em.refresh(em.create(Author, { id: 5004, name: 'new' }))).rejects.toMatchObject({ code: 'UNPLACED_ENTITY', entity: 'Author#5004' });
    });

    it('re-homes references made by primary key before the shard was known', async () => {
      const em = orm.em.fork();
      em.create(Book, { id: 9001, title: 'by-reference', author: 5 } as never);
      await em.flush();
      const book = await orm.em.fork().findOneOrFail(Book, 9001);
      expect(orm.em.fork().shardOf(book)).toBe(shardOfId(5));
      expect(helper(book.author).__em).toBe(helper(book).__em);
      const cleanup = orm.em.fork();
      cleanup.remove(await cleanup.findOneOrFail(Book, 9001));
      await cleanup.flush();
    });
  });

  describe('primary-key reads', () => {
    it('finds by id on the id chooser’s candidate, and from the identity map without a query', async () => {
      const em = orm.em.fork();
      const author = await em.findOneOrFail(Author, 7);
      expect(author.name).toBe(seedRows()[6]!.name);
      expect(em.shardOf(author)).toBe(shardOfId(7));
      expect(await em.findOne(Author, { id: 7 })).toBe(author);
      expect(await em.findOne(Author, author)).toBe(author);
    });

    it('searches several candidates in order (books may be on any shard)', async () => {
      const em = orm.em.fork();
      const book = await em.findOneOrFail(Book, 61);
      expect(book.title).toBe(seedRows()[5]!.books[1]!.title);
      expect(em.shardOf(book)).toBe(shardOfId(6));
    });

    it('throws MikroORM’s NotFoundError from findOneOrFail, null from findOne', async () => {
      const em = orm.em.fork();
      expect(await em.findOne(Author, 424242)).toBeNull();
      await expect(em.findOneOrFail(Author, 424242)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('makes references on the only candidate, and refuses to guess between several', async () => {
      const em = orm.em.fork();
      const ref = em.getReference(Author, 8);
      expect(em.shardOf(ref)).toBe(shardOfId(8));
      expect(helper(ref).isInitialized()).toBe(false);
      expect(() => em.getReference(Book, 61)).toThrow(expect.objectContaining({ code: 'AMBIGUOUS_SHARD' }));
      const book = em.getReference(Book, 61, { shard: shardOfId(6) });
      await em.findOneOrFail(Book, 61);
      expect(book.title).toBe(seedRows()[5]!.books[1]!.title);
    });

    it('keeps lazy loads on the parent’s shard', async () => {
      const em = orm.em.fork();
      const author = await em.findOneOrFail(Author, 11);
      await author.books.load();
      expect(
        author.books
          .getItems()
          .map(book => book.id)
          .sort(),
      ).toEqual(
        seedRows()[10]!
          .books.map(book => book.id)
          .sort(),
      );
      for (const book of author.books) {
        expect(em.shardOf(book)).toBe(shardOfId(11));
        expect(helper(book).__em).toBe(em.on(shardOfId(11)));
      }
    });
  });

  describe('fan-out queries', () => {
    // SQLite needs a LIMIT with an OFFSET, so one database is asked with a limit far above the row count.
    const cases: [string, object, object, object?][] = [
      ['rating desc, id asc, page', {}, { orderBy: { rating: 'desc', id: 'asc' }, limit: 7, offset: 5 }],
      ['born asc with nulls, id', {}, { orderBy: [{ born: 'asc' }, { id: 'asc' }] }],
      ['born desc nulls last', {}, { orderBy: { born: 'desc nulls last', id: 'desc' }, limit: 10 }],
      ['name (mixed case) with a filter', { born: { $gte: 1960 } }, { orderBy: { name: 'asc' }, limit: 8, offset: 2 }],
      ['offset without limit', {}, { orderBy: { id: 'desc' }, offset: 25 }, { orderBy: { id: 'desc' }, offset: 25, limit: 1000 }],
      ['past the end', {}, { orderBy: { id: 'asc' }, limit: 10, offset: 1000 }],
    ];
    for (const [name, where, options, plainOptions = options] of cases) {
      it(`merges in global order like one database: ${name}`, async () => {
        const sharded = await orm.em.fork().find(Author, where, options);
        const plain = await reference.em.fork().find(Author, where, plainOptions);
        expect(sharded.map(a => a.id)).toEqual(plain.map(a => a.id));
      });
    }

    it('answers queries of one shape with different values each time (compiled once, values bound anew)', async () => {
      const wheres: FilterQuery<Author>[] = [
        ...[1955, 1960, 1975, 1989].map(born => ({ born: { $gte: born } })),
        ...[[1, 2, 3], [4], [5, 6, 7, 8, 9]].map(ids => ({ id: { $in: ids } })),
        ...['ann%', 'Bob%', '%-1%'].map(name => ({ name: { $like: name } })),
        ...(
          [
            [3, 'cid-02'],
            [9, 'eve-29'],
          ] as const
        ).map(([id, name]) => ({ $or: [{ id: { $lte: id } }, { name }] })),
        { born: { $gte: 1960, $lt: 1970 }, name: { $ne: 'Dee-04' } },
      ];
      for (const where of wheres) {
        for (const limit of [3, 6]) {
          const options = { orderBy: { born: 'desc', id: 'asc' }, limit } as const;
          const sharded = await orm.em.fork().find(Author, where, options);
          const plain = await reference.em.fork().find(Author, where, options);
          expect([where, sharded.map(a => a.id)]).toEqual([where, plain.map(a => a.id)]);
        }
        expect(await orm.em.fork().count(Author, where)).toBe(await reference.em.fork().count(Author, where));
      }
    });

    it('merges decimals by value on both the row path and the entity path', async () => {
      const options = { orderBy: { price: 'desc', id: 'asc' }, limit: 12 } as const;
      const plain = (await reference.em.fork().find(Book, {}, options)).map(b => b.id);
      expect((await orm.em.fork().find(Book, {}, options)).map(b => b.id)).toEqual(plain);
      // `fields` takes the general path that hydrates each shard's page and merges entities.
      expect((await orm.em.fork().find(Book, {}, { ...options, fields: ['id', 'price'] })).map(b => b.id)).toEqual(plain);
    });

    it('merges by a relation path (author.name), loading it', async () => {
      const options = { orderBy: { author: { name: 'desc' }, id: 'asc' }, limit: 9 } as const;
      const sharded = await orm.em.fork().find(Book, {}, options);
      const plain = await reference.em.fork().find(Book, {}, options);
      expect(sharded.map(b => b.id)).toEqual(plain.map(b => b.id));
    });

    it('without orderBy, returns shards one after another in chooser order', async () => {
      const sharded = await orm.em.fork().find(Author, { id: { $lte: 30 } });
      const shardSequence = sharded.map(a => shardOfId(a.id));
      expect(shardSequence).toEqual([...shardSequence].sort());
      expect(sharded).toHaveLength(30);
    });

    it('populates each result on its own shard', async () => {
      const em = orm.em.fork();
      const books = await em.find(Book, {}, { populate: ['author'], orderBy: { title: 'asc', id: 'asc' }, limit: 10 });
      expect(books.map(b => b.id)).toEqual((await reference.em.fork().find(Book, {}, { orderBy: { title: 'asc', id: 'asc' }, limit: 10 })).map(b => b.id));
      for (const book of books) {
        expect(helper(book.author).isInitialized()).toBe(true);
        expect(em.shardOf(book.author)).toBe(em.shardOf(book));
      }
    });

    it('takes the condition from options.where in findAll, and enforces strict findOneOrFail', async () => {
      const options = { where: { born: { $lt: 1960 } }, orderBy: { id: 'asc' } } as const;
      expect((await orm.em.fork().findAll(Author, options)).map(a => a.id)).toEqual((await reference.em.fork().findAll(Author, options)).map(a => a.id));
      await expect(orm.em.fork().findOneOrFail(Author, { born: { $ne: null } }, { strict: true })).rejects.toBeInstanceOf(NotFoundError);
      expect((await orm.em.fork().findOneOrFail(Author, { name: seedRows()[3]!.name }, { strict: true })).id).toBe(4);
    });

    it('counts and pages with findAndCount like one database', async () => {
      const where = { rating: { $ne: null } };
      expect(await orm.em.fork().count(Author, where)).toBe(await reference.em.fork().count(Author, where));
      const [items, total] = await orm.em.fork().findAndCount(Author, where, { orderBy: { rating: 'asc', id: 'asc' }, limit: 4, offset: 3 });
      const [plainItems, plainTotal] = await reference.em.fork().findAndCount(Author, where, { orderBy: { rating: 'asc', id: 'asc' }, limit: 4, offset: 3 });
      expect([items.map(a => a.id), total]).toEqual([plainItems.map(a => a.id), plainTotal]);
    });

    it('finds one row by a non-key condition across shards, first in orderBy', async () => {
      const sharded = await orm.em.fork().findOne(Author, { born: { $ne: null } }, { orderBy: { born: 'desc', id: 'desc' } });
      const plain = await reference.em.fork().findOne(Author, { born: { $ne: null } }, { orderBy: { born: 'desc', id: 'desc' } });
      expect(sharded?.id).toBe(plain?.id);
    });

    it('auto-flushes pending entities before a query, as MikroORM does', async () => {
      const em = orm.em.fork();
      em.create(Author, { id: 2000, name: 'zz-autoflush' });
      const found = await em.find(Author, { name: 'zz-autoflush' });
      expect(found.map(a => a.id)).toEqual([2000]);
      await em.remove(found[0]!).flush();
    });
  });

  describe('explicit targeting', () => {
    it('{ shard } on create wins over the chooser; on find and count it reads that shard only', async () => {
      const em = orm.em.fork();
      const author = em.create(Author, { id: 3000, name: 'pinned' }, { shard: 's2' });
      expect(shardOfId(3000)).not.toBe('s2');
      await em.flush();
      expect(em.shardOf(author)).toBe('s2');
      // The identity map answers before the id chooser, whose only candidate for 3000 is another shard.
      expect(await em.findOne(Author, 3000)).toBe(author);
      expect((await orm.em.fork().find(Author, { name: 'pinned' }, { shard: 's2' })).map(a => a.id)).toEqual([3000]);
      expect(await orm.em.fork().count(Author, { name: 'pinned' }, { shard: 's0' })).toBe(0);
      expect((await orm.em.fork().findOne(Author, { id: 3000 }, { shard: 's2' }))?.name).toBe('pinned');
      const onShard = orm.em.fork();
      expect(await onShard.on('s2').count(Author, { name: 'pinned' })).toBe(1);
      await onShard.on('s2').nativeDelete(Author, { id: 3000 });
    });

    it('rejects an unknown shard in { shard } and em.on()', async () => {
      const em = orm.em.fork();
      expect(() => em.on('nope')).toThrow(expect.objectContaining({ code: 'UNKNOWN_SHARD' }));
      expect(() => em.create(Author, { id: 3001, name: 'x' }, { shard: 'nope' })).toThrow(ShardingError);
      await expect(em.find(Author, {}, { shard: 'nope' })).rejects.toMatchObject({ code: 'UNKNOWN_SHARD' });
    });
  });

  describe('bad input writes nothing', () => {
    /** Runs a write that must fail with `code`, and counts rows on every shard before and after. */
    async function expectNothingWritten(write: (em: ShardedEntityManager) => Promise<unknown>, code: string, fleet = () => orm): Promise<void> {
      const before = { author: await rowsPerShard(orm, 'author'), book: await rowsPerShard(orm, 'book') };
      const error = await write(fleet().em.fork()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ShardingError);
      expect((error as ShardingError).code).toBe(code);
      expect({ author: await rowsPerShard(orm, 'author'), book: await rowsPerShard(orm, 'book') }).toEqual(before);
    }

    let bad: ShardedMikroORM;
    beforeAll(async () => {
      // Same databases, a chooser with the failure modes keyed by name.
      bad = await openFleet(
        topology,
        {
          shardChooser: ({ entity }) => {
            const name = (entity as Author).name;
            if (name === 'unknown') return 'nope';
            if (name === 'throws') throw new Error('directory is down');
            if (name === 'nothing') return undefined as never;
            return shardOfId((entity as Author).id);
          },
        },
        false,
      );
    });
    afterAll(() => bad?.close(true));

    /** A valid author with a book, then one whose name trips the chooser, in one flush. */
    const failing = (name: string) => async (em: ShardedEntityManager) => {
      em.create(Author, { id: 4000, name: 'fine', books: [{ id: 40000, title: 'fine' }] } as never);
      em.create(Author, { id: 4001, name });
      await em.flush();
    };

    it('an unknown shard id from the chooser (UNKNOWN_SHARD) names entity and value', async () => {
      await expectNothingWritten(failing('unknown'), 'UNKNOWN_SHARD', () => bad);
      const em = bad.em.fork();
      em.create(Author, { id: 4001, name: 'unknown' });
      await expect(em.flush()).rejects.toThrow(/Author#4001.*"nope"|"nope".*Author#4001/);
    });

    it('a chooser that throws (CHOOSER_FAILED), keeping the cause', async () => {
      await expectNothingWritten(failing('throws'), 'CHOOSER_FAILED', () => bad);
      const em = bad.em.fork();
      em.create(Author, { id: 4001, name: 'throws' });
      const error = await em.flush().catch((e: ShardingError) => e);
      expect((error as ShardingError).cause).toBeInstanceOf(Error);
      expect((error as ShardingError).entity).toBe('Author#4001');
    });

    it('a chooser that returns nothing (CHOOSER_RETURNED_NOTHING)', async () => {
      await expectNothingWritten(failing('nothing'), 'CHOOSER_RETURNED_NOTHING', () => bad);
    });

    it('a new entity referencing an entity on another shard (CROSS_SHARD_REFERENCE)', async () => {
      await expectNothingWritten(async em => {
        const author = await em.findOneOrFail(Author, 4); // lives on s1
        em.create(Author, { id: 4002, name: 'fine' });
        em.create(Book, { id: 40001, title: 'stray', author }, { shard: 's0' });
        await em.flush();
      }, 'CROSS_SHARD_REFERENCE');
    });

    it('a loaded entity re-pointed at an entity on another shard (CROSS_SHARD_REFERENCE)', async () => {
      await expectNothingWritten(async em => {
        const book = await em.findOneOrFail(Book, 61); // author 6, on s0
        book.author = await em.findOneOrFail(Author, 4); // s1
        book.title = 'changed';
        await em.flush();
      }, 'CROSS_SHARD_REFERENCE');
      const [row] = await orm.shard(shardOfId(6)).em.fork().getConnection().execute('select title, author_id from book where id = 61');
      expect([row.title, Number(row.author_id)]).toEqual([seedRows()[5]!.books[1]!.title, 6]);
    });

    it('a many-to-many link across shards (CROSS_SHARD_REFERENCE)', async () => {
      await expectNothingWritten(async em => {
        const book = await em.findOneOrFail(Book, 61, { populate: ['tags'] }); // s0
        book.tags.add(em.create(Tag, { id: 1, label: 'on-s1' })); // tag 1 -> s1
        await em.flush();
      }, 'CROSS_SHARD_REFERENCE');
      expect(await rowsPerShard(orm, 'tag')).toEqual({ s0: 0, s1: 0, s2: 0 });
    });
  });

  describe('contexts', () => {
    it('refuses the global em outside a context, like MikroORM', async () => {
      await expect(orm.em.find(Author, {})).rejects.toThrow(/global EntityManager/);
      expect(() => orm.em.create(Author, { id: 1, name: 'x' })).toThrow(/global EntityManager/);
    });

    it('gives each request its own sharded fork; shard ems resolve to its forks', async () => {
      const seen = await Promise.all(
        [1, 2].map(id =>
          ShardedRequestContext.create(orm.em, async () => {
            const author = await orm.em.findOneOrFail(Author, id);
            const shard = shardOfId(id);
            expect(orm.shard(shard).em.getContext()).toBe(orm.em.on(shard));
            return author;
          }),
        ),
      );
      expect(seen.map(a => a.id)).toEqual([1, 2]);
      expect(helper(seen[0]!).__em).not.toBe(helper(seen[1]!).__em);
    });
  });

  it(`spreads the seed over all ${SHARDS} shards`, async () => {
    const counts = await rowsPerShard(orm, 'author');
    expect(Object.values(counts).every(count => count > 0)).toBe(true);
  });
}
