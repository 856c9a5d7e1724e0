// `handrolled`: S plain MikroORM instances chosen by hand with the workload's hash; fan-out asks every shard one after
// another and sorts in memory. What users write today.
import { MikroORM } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/core';
import { makeItem, shardIndex, type ItemLike, type Row } from '../workload.ts';
import type { System, SystemContext } from './system.ts';

export async function openHandrolled(ctx: SystemContext): Promise<System> {
  const { Item } = makeItem();
  const S = ctx.shards;
  const targets = await ctx.dbs.provision('handrolled', S);
  const orms: MikroORM[] = [];
  for (const target of targets) orms.push(await MikroORM.init({ ...ctx.dbs.shared(), ...target, entities: [Item] }));
  for (const orm of orms) await orm.schema.create();
  const order = { score: 'desc' } as const;
  return {
    name: 'handrolled',
    databases: S,
    async insertBatch(rows: readonly Row[]) {
      const forks = new Map<number, EntityManager>();
      for (const row of rows) {
        const s = shardIndex(row.id, S);
        let em = forks.get(s);
        if (!em) forks.set(s, (em = orms[s]!.em.fork()));
        em.create(Item, row);
      }
      for (const em of forks.values()) await em.flush();
    },
    session() {
      const forks: (EntityManager | undefined)[] = new Array(S);
      return {
        findById(id: number) {
          const s = shardIndex(id, S);
          const em = (forks[s] ??= orms[s]!.em.fork());
          return em.findOne(Item, id);
        },
      };
    },
    async topPage(x, offset, limit) {
      const all: ItemLike[] = [];
      for (const orm of orms) {
        all.push(...(await orm.em.fork().find(Item, { score: { $gte: x } }, { orderBy: order, limit: offset + limit })));
      }
      all.sort((a, b) => b.score - a.score);
      return all.slice(offset, offset + limit);
    },
    async transaction(ids) {
      // By hand, a transaction can only be one shard's.
      const shard = shardIndex(ids[0]!, S);
      if (ids.some(id => shardIndex(id, S) !== shard)) throw new Error('handrolled: a transaction across shards');
      await orms[shard]!.em.fork().transactional(async em => {
        for (const id of ids) {
          const item = await em.findOne(Item, id);
          item!.score += 1;
        }
      });
    },
    async count(x) {
      let total = 0;
      for (const orm of orms) total += await orm.em.fork().count(Item, { score: { $gte: x } });
      return total;
    },
    async close() {
      for (const orm of orms) await orm.close(true);
      await ctx.dbs.release(targets);
    },
  };
}
