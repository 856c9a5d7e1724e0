import { defineEntity, MikroORM, p, wrap } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, type ShardedEntityManager } from 'mikro-orm-sharding';
import { postgresTopology, sqliteTopology, type Topology } from './support/topology.ts';

// Each test reproduces one wrong answer of the trust issue: a merged query over four shards must answer as plain
// MikroORM does on one database holding every row, or refuse with a ShardingError.

const ItemSchema = defineEntity({
  name: 'Item',
  properties: {
    id: p.integer().primary().autoincrement(false),
    name: p.string().nullable(),
    score: p.integer().nullable(),
    parts: () => p.oneToMany(Part).mappedBy('item'),
  },
});
class Item extends ItemSchema.class {}
ItemSchema.setClass(Item);

const PartSchema = defineEntity({
  name: 'Part',
  properties: {
    id: p.integer().primary().autoincrement(false),
    weight: p.integer(),
    item: () => p.manyToOne(Item),
  },
});
class Part extends PartSchema.class {}
PartSchema.setClass(Part);

const items = [
  {
    id: 1,
    name: 'b',
    score: 1,
    parts: [
      { id: 10, weight: 5 },
      { id: 11, weight: 7 },
      { id: 12, weight: 1 },
    ],
  },
  { id: 2, name: 'c', score: null, parts: [{ id: 20, weight: 0 }] },
  { id: 3, name: 'a', score: 3, parts: [{ id: 30, weight: 9 }] },
];

/** What a user sees of an answer: MikroORM's own serialisation, populated children included. */
const seen = (entities: readonly object[]) => entities.map(entity => wrap(entity).toObject());

for (const makeTopology of [sqliteTopology, postgresTopology]) {
  describe(`wrong answers of merged queries, fixed (${makeTopology === sqliteTopology ? 'SQLite' : 'PostgreSQL'})`, () => {
    let topology: Topology;
    let orm: ShardedMikroORM;
    let reference: MikroORM;
    const sharded = (): ShardedEntityManager => orm.em.fork();
    const plain = () => reference.em.fork();

    beforeAll(async () => {
      topology = makeTopology();
      orm = await ShardedMikroORM.init({
        ...topology.shared,
        entities: [Item, Part],
        shards: topology.shards(4),
        shardChooser: ({ entity }) => `s${(entity instanceof Part ? entity.item.id : (entity as Item).id) % 4}`,
      });
      await orm.schema.refresh();
      reference = await MikroORM.init({ ...topology.shared, ...topology.database('reference'), entities: [Item, Part] });
      await reference.schema.refresh();
      const em = orm.em.fork();
      const one = reference.em.fork();
      for (const item of items) {
        em.create(Item, item as never);
        one.create(Item, item as never);
      }
      await em.flush();
      await one.flush();
    });

    afterAll(async () => {
      await orm?.close(true);
      await reference?.close(true);
      await topology?.dispose();
    });

    it('spreads the items over three shards', async () => {
      for (const item of items) {
        expect(
          await sharded()
            .on(`s${item.id % 4}`)
            .count(Item, { id: item.id }),
        ).toBe(1);
      }
    });

    for (const partial of [{ fields: ['score'] }, { exclude: ['name'] }] as const) {
      it(`orders by a key that ${Object.keys(partial)[0]} leaves out, without exposing it`, async () => {
        const options = { orderBy: { name: 'asc' }, ...partial } as const;
        const found = await sharded().find(Item, {}, options as never);
        expect(seen(found)).toEqual(seen(await plain().find(Item, {}, options as never)));
        expect(found.map(item => item.id)).toEqual([3, 1, 2]);
      });
    }

    it('counts roots, not join rows, through a to-many condition', async () => {
      const where = { parts: { weight: { $gt: 3 } } };
      expect(await sharded().count(Item, where)).toBe(2);
      expect(await plain().count(Item, where)).toBe(2);
      const [page, total] = await sharded().findAndCount(Item, where, { orderBy: { id: 'asc' }, limit: 1 });
      expect([page.map(item => item.id), total]).toEqual([[1], 2]);
    });

    it('finds each root once through a to-many condition, with and without a limit or offset', async () => {
      const where = { parts: { weight: { $gt: 3 } } };
      expect((await sharded().find(Item, where, { orderBy: { id: 'asc' } })).map(item => item.id)).toEqual([1, 3]);
      expect((await sharded().find(Item, where, { orderBy: { id: 'asc' }, offset: 1 })).map(item => item.id)).toEqual([3]);
      expect((await sharded().find(Item, where, { orderBy: { id: 'asc' }, limit: 2 })).map(item => item.id)).toEqual([1, 3]);
      expect((await sharded().find(Item, where, { orderBy: { score: 'desc' }, limit: 1, offset: 1 })).map(item => item.id)).toEqual([1]);
      expect((await sharded().find(Item, where)).map(item => item.id).sort()).toEqual([1, 3]);
    });

    it("populates with populateWhere: 'infer' as MikroORM does", async () => {
      const options = { orderBy: { id: 'asc' }, populate: ['parts'], populateWhere: 'infer' } as const;
      const where = { parts: { weight: { $gt: 3 } } };
      const found = await sharded().find(Item, where, options);
      expect(seen(found)).toEqual(seen(await plain().find(Item, where, options)));
      expect(
        found[0]!.parts
          .getItems()
          .map(part => part.id)
          .sort(),
      ).toEqual([10, 11]);
    });

    it('binds numbers that do not fit an integer column as MikroORM writes them', async () => {
      for (const where of [
        { score: { $gt: 2.5 } },
        { score: { $in: [1, 2.5] } },
        { score: { $lt: 3_000_000_000 } },
        { score: { $gte: -3_000_000_000, $ne: 1.5 } },
      ]) {
        const options = { orderBy: { id: 'asc' } } as const;
        expect([where, (await sharded().find(Item, where, options)).map(item => item.id)]).toEqual([
          where,
          (await plain().find(Item, where, options)).map(item => item.id),
        ]);
        expect([where, await sharded().count(Item, where)]).toEqual([where, await plain().count(Item, where)]);
      }
      const through = { parts: { weight: { $gt: 6.5 } } };
      expect(await sharded().count(Item, through)).toBe(await plain().count(Item, through));
    });

    it('refuses to order through a to-many collection over several shards', async () => {
      const error = await sharded()
        .find(Item, {}, { orderBy: { parts: { weight: 'desc' } } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ShardingError);
      expect(error).toMatchObject({ code: 'UNMERGEABLE_QUERY' });
      expect((error as Error).message).toMatch(/parts\.weight/);
      // One shard is plain MikroORM.
      expect((await sharded().find(Item, {}, { orderBy: { parts: { weight: 'desc' } }, shard: 's1' })).map(item => item.id)).toEqual([1]);
    });

    it('refuses groupBy and having over several shards', async () => {
      await expect(sharded().find(Item, {}, { fields: ['score'], groupBy: ['score'] } as never)).rejects.toMatchObject({ code: 'UNMERGEABLE_QUERY' });
      await expect(sharded().find(Item, {}, { having: { score: { $gt: 0 } } } as never)).rejects.toMatchObject({ code: 'UNMERGEABLE_QUERY' });
      await expect(sharded().count(Item, {}, { groupBy: ['score'] } as never)).rejects.toMatchObject({ code: 'UNMERGEABLE_QUERY' });
    });

    it('refuses an empty findOne condition with MikroORM’s own error', async () => {
      const expected = (await plain()
        .findOne(Item, {})
        .catch((e: Error) => e)) as Error;
      expect(expected).toBeInstanceOf(Error);
      for (const where of [{}, undefined, null]) {
        const error = await sharded()
          .findOne(Item, where as never)
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(expected.constructor);
        expect(error).not.toBeInstanceOf(ShardingError);
        expect((error as Error).message).toBe((expected as Error).message);
        const failing = await sharded()
          .findOneOrFail(Item, where as never)
          .catch((e: unknown) => e);
        expect((failing as Error).message).toBe((expected as Error).message);
      }
    });

    const pages: [string, object][] = [
      ['strings', { offset: '1', limit: '1' }],
      ['a string offset', { offset: '1', limit: 10 }],
      ['a string limit', { limit: '2' }],
      ['NaN offset', { offset: Number.NaN, limit: 2 }],
      ['zero limit', { limit: 0 }],
      ['null limit and offset', { limit: null, offset: null }],
      ['negative offset', { offset: -1, limit: 2 }],
      ['negative limit', { limit: -1 }],
      ['negative limit, offset', { limit: -1, offset: 1 }],
      ['fractional limit', { limit: 1.5 }],
      ['fractional offset', { offset: 0.5, limit: 5 }],
      ['NaN limit', { limit: Number.NaN }],
      ['Infinity limit', { limit: Number.POSITIVE_INFINITY }],
      ['a word', { limit: 'abc' }],
      // Found by the differential suite: SQLite never evaluates the offset of an empty page.
      ['zero limit, fractional offset', { limit: 0, offset: 0.5 }],
      ['zero limit, negative offset', { limit: 0, offset: -1 }],
    ];
    for (const [name, page] of pages) {
      it(`pages by odd limit/offset values as MikroORM does: ${name}`, async () => {
        const options = { orderBy: { id: 'asc' }, ...page } as never;
        const answer = (promise: Promise<Item[]>) =>
          promise.then(
            found => ({ ids: found.map(item => item.id) }),
            (error: Error) => ({ error: error.constructor.name, message: error.message.replace(/^.* - /, '') }),
          );
        expect(await answer(sharded().find(Item, {}, options))).toEqual(await answer(plain().find(Item, {}, options)));
      });
    }

    it('answers an empty page as one database does, though its offset is one the database refuses elsewhere', async () => {
      // Found by the differential suite: PostgreSQL never evaluates the negative offset of a pagination sub-query
      // that finds nothing, and answers [] where it would refuse the offset otherwise.
      const where = { parts: { weight: { $gt: 100 } } };
      const options = { orderBy: { id: 'asc' }, offset: -1, limit: 2 } as const;
      const answer = (promise: Promise<Item[]>) =>
        promise.then(
          found => found.map(item => item.id),
          (error: Error) => error.constructor.name,
        );
      expect(await answer(sharded().find(Item, where, options))).toEqual(await answer(plain().find(Item, where, options)));
    });

    it('answers $in with more values than the database binds', async () => {
      const ids = Array.from({ length: 70_000 }, (_, i) => i);
      const where = { id: { $in: ids } };
      expect((await sharded().find(Item, where, { orderBy: { id: 'asc' } })).map(item => item.id)).toEqual([1, 2, 3]);
      expect(await sharded().count(Item, where)).toBe(3);
      expect((await sharded().find(Item, { ...where, parts: { weight: { $gte: 0 } } }, { orderBy: { id: 'asc' }, limit: 2 })).map(item => item.id)).toEqual([
        1, 2,
      ]);
    });
  });
}
