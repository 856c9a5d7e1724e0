// `plain`: plain MikroORM, all rows in ONE database. What a user would run instead of sharding.
import { MikroORM } from '@mikro-orm/core';
import { makeItem } from '../workload.ts';
import { entityManagerSystem, type WorkloadEntityManager } from './em-system.ts';
import type { System, SystemContext } from './system.ts';

export async function openPlain(ctx: SystemContext): Promise<System> {
  const { Item } = makeItem();
  const targets = await ctx.dbs.provision('plain', 1);
  const orm = await MikroORM.init({ ...ctx.dbs.shared(), ...targets[0], entities: [Item] });
  await orm.schema.create();
  const em = () => orm.em.fork() as unknown as WorkloadEntityManager;
  return entityManagerSystem('plain', 1, Item, em, async () => {
    await orm.close(true);
    await ctx.dbs.release(targets);
  });
}
