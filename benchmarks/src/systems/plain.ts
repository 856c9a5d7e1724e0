// `plain`: plain MikroORM, all rows in ONE database. What a user would run instead of sharding.
import { MikroORM } from '@mikro-orm/core';
import { makeItem, type Row } from '../workload.ts';
import type { System, SystemContext } from './system.ts';

export async function openPlain(ctx: SystemContext): Promise<System> {
  const { Item } = makeItem();
  const targets = await ctx.dbs.provision('plain', 1);
  const orm = await MikroORM.init({ ...ctx.dbs.shared(), ...targets[0], entities: [Item] });
  await orm.schema.create();
  const order = { score: 'desc' } as const;
  return {
    name: 'plain',
    databases: 1,
    async insertBatch(rows: readonly Row[]) {
      const em = orm.em.fork();
      for (const row of rows) em.create(Item, row);
      await em.flush();
    },
    session() {
      const em = orm.em.fork();
      return { findById: (id: number) => em.findOne(Item, id) };
    },
    topPage(x, offset, limit) {
      return orm.em.fork().find(Item, { score: { $gte: x } }, { orderBy: order, limit, offset });
    },
    count(x) {
      return orm.em.fork().count(Item, { score: { $gte: x } });
    },
    async close() {
      await orm.close(true);
      await ctx.dbs.release(targets);
    },
  };
}
