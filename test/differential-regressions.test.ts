import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardingError } from 'mikro-orm-sharding';
import { load, type RecRow } from './differential/data.ts';
import { closePair, openPair, type Pair } from './differential/fleets.ts';
import { Rec } from './differential/model.ts';
import { postgresTopology, sqliteTopology, type Topology } from './support/topology.ts';

// Minimal cases of what the differential suite (test/differential) found, kept in the ordinary suite.

const blank = { int: null, small: 0, big: null, dec: null, dbl: null, str: null, txt: null, flag: null, day: null, at: null, leaves: [] };
const rows: RecRow[] = [
  { ...blank, id: 1, big: 9_007_199_254_740_993n, leaves: [{ id: 10, weight: 5, label: 'a' }] },
  { ...blank, id: 2, big: 9_007_199_254_740_992n, leaves: [{ id: 20, weight: 7, label: 'b' }] },
  { ...blank, id: 3, big: 1n, leaves: [{ id: 30, weight: 9, label: null }] },
  { ...blank, id: 4, big: null },
];

for (const makeTopology of [sqliteTopology, postgresTopology]) {
  const sqlite = makeTopology === sqliteTopology;
  describe(`found by the differential suite (${sqlite ? 'SQLite' : 'PostgreSQL'})`, () => {
    let topology: Topology;
    let pair: Pair;

    beforeAll(async () => {
      topology = makeTopology();
      pair = await openPair(topology);
      await load(pair, rows);
    });

    afterAll(async () => {
      await closePair(pair);
      await topology?.dispose();
    });

    it(sqlite ? 'refuses to merge by bigints the driver reads rounded (2^53 and more)' : 'merges bigints beyond 2^53 exactly', async () => {
      const options = { orderBy: { big: 'asc', id: 'asc' } } as const;
      const plain = (await pair.plain.em.fork().find(Rec, {}, options)).map(rec => rec.id);
      const sharded = pair.sharded.em.fork().find(Rec, {}, options);
      if (sqlite) {
        const error = await sharded.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ShardingError);
        expect(error).toMatchObject({ code: 'UNMERGEABLE_QUERY', value: 9_007_199_254_740_992 });
        // Below 2^53 the same order merges.
        expect((await pair.sharded.em.fork().find(Rec, { big: { $lt: 100n } }, options)).map(rec => rec.id)).toEqual([3]);
      } else {
        expect((await sharded).map(rec => rec.id)).toEqual(plain);
        expect(plain).toEqual([3, 2, 1, 4]);
      }
    });

    it('populates only the merged page, not every shard’s offset + limit rows', async () => {
      // MikroORM 7.2.1 fails to populate with `populateWhere: 'infer'` through `$some`; one database never tries
      // when the page is empty, so neither may the shards.
      const where = { leaves: { $some: { weight: { $gt: 0 } } } };
      const options = { fields: ['small'], populate: ['leaves'], populateWhere: 'infer', orderBy: { id: 'asc' }, offset: 5, limit: 2 } as const;
      expect(await pair.sharded.em.fork().find(Rec, where, options as never)).toEqual(await pair.plain.em.fork().find(Rec, where, options as never));
      const em = pair.sharded.em.fork();
      const page = await em.find(Rec, {}, { fields: ['small'], populate: ['leaves'], orderBy: { id: 'asc' }, offset: 1, limit: 1 } as never);
      expect(page.map(rec => rec.id)).toEqual([2]);
      const managed = pair.sharded.shardIds.flatMap(shard => [...em.on(shard).getUnitOfWork().getIdentityMap()].filter(entity => entity instanceof Rec));
      expect(managed.map(rec => rec.id)).toEqual([2]);
    });

    it(sqlite ? 'refuses a deep page ordered by rounded bigints too' : 'merges a deep page ordered by bigints beyond 2^53', async () => {
      const many = Array.from({ length: 1100 }, (_, i): RecRow => ({ ...blank, id: i + 100, big: BigInt(i) }));
      await load(pair, [...many, { ...blank, id: 5, big: 9_007_199_254_740_993n }]);
      try {
        const options = { orderBy: { big: 'desc', id: 'asc' }, offset: 1000, limit: 5 } as const;
        const sharded = pair.sharded.em.fork().find(Rec, {}, options);
        if (sqlite) {
          await expect(sharded).rejects.toMatchObject({ code: 'UNMERGEABLE_QUERY' });
        } else {
          expect((await sharded).map(rec => rec.id)).toEqual((await pair.plain.em.fork().find(Rec, {}, options)).map(rec => rec.id));
        }
      } finally {
        await load(pair, rows);
      }
    });
  });
}
