import { defineEntity, MikroORM, p } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { postgresTopology, sqliteTopology, type Topology } from './support/topology.ts';

const ScoreSchema = defineEntity({
  name: 'Score',
  properties: {
    id: p.integer().primary().autoincrement(false),
    player: p.string(),
    points: p.integer().nullable(),
  },
});
class Score extends ScoreSchema.class {}
ScoreSchema.setClass(Score);

const ROWS = 3000;
// Few distinct values, so ties cross every page boundary; some nulls.
const rows = Array.from({ length: ROWS }, (_, i) => ({ id: i + 1, player: `p${(i * 7) % 13}`, points: i % 17 === 0 ? null : (i * 31) % 97 }));

for (const makeTopology of [sqliteTopology, postgresTopology]) {
  describe(`deep pages (offset >= 1000) on ${makeTopology === sqliteTopology ? 'SQLite' : 'PostgreSQL'}`, () => {
    let topology: Topology;
    let orm: ShardedMikroORM;
    let reference: MikroORM;

    beforeAll(async () => {
      topology = makeTopology();
      orm = await ShardedMikroORM.init({
        ...topology.shared,
        entities: [Score],
        shards: topology.shards(4),
        shardChooser: ({ entity }) => `s${(entity as Score).id % 4}`,
      });
      await orm.schema.refresh();
      reference = await MikroORM.init({ ...topology.shared, ...topology.database('reference'), entities: [Score] });
      await reference.schema.refresh();
      await reference.em.fork().insertMany(Score, rows);
      for (const shard of orm.shardIds) {
        await orm
          .shard(shard)
          .em.fork()
          .insertMany(
            Score,
            rows.filter(row => `s${row.id % 4}` === shard),
          );
      }
    });

    afterAll(async () => {
      await orm?.close(true);
      await reference?.close(true);
      await topology?.dispose();
    });

    // Ties make one database's page order among equal keys arbitrary, so every order ends with the primary key.
    const orders = [
      { points: 'desc', id: 'asc' },
      { points: 'asc nulls first', id: 'desc' },
      { player: 'asc', points: 'desc', id: 'asc' },
    ] as const;
    for (const orderBy of orders) {
      for (const [offset, limit] of [
        [1000, 20],
        [1777, 7],
        [2990, 20],
        [2999, 5],
        [4000, 10],
      ] as const) {
        it(`${JSON.stringify(orderBy)} offset ${offset} limit ${limit} equals one database`, async () => {
          const sharded = await orm.em.fork().find(Score, { points: { $ne: 5 } }, { orderBy, offset, limit });
          const plain = await reference.em.fork().find(Score, { points: { $ne: 5 } }, { orderBy, offset, limit });
          expect(sharded.map(s => s.id)).toEqual(plain.map(s => s.id));
        });
      }
    }

    it('pages of one order tile the whole result without gaps or repeats', async () => {
      const seen: number[] = [];
      for (let offset = 1000; offset < 1400; offset += 50) {
        const page = await orm.em.fork().find(Score, {}, { orderBy: { points: 'desc' }, offset, limit: 50 });
        seen.push(...page.map(s => s.id));
      }
      const all = await orm.em.fork().find(Score, {}, { orderBy: { points: 'desc' }, offset: 1000, limit: 400 });
      expect(seen).toEqual(all.map(s => s.id));
      expect(new Set(seen).size).toBe(400);
    });

    it('makes the page entities managed on their own shards', async () => {
      const em = orm.em.fork();
      const page = await em.find(Score, {}, { orderBy: { id: 'asc' }, offset: 2000, limit: 8 });
      expect(page.map(s => s.id)).toEqual([2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008]);
      expect(page.map(s => em.shardOf(s))).toEqual(page.map(s => `s${s.id % 4}`));
    });
  });
}
