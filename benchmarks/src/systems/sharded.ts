// `sharded`: mikro-orm-sharding's ShardedMikroORM over S shards, routed with the workload's hash.
import type { ShardedMikroORM as ShardedMikroORMType } from 'mikro-orm-sharding';
import { makeItem, shardIndex, shardName, shardNames, type Row } from '../workload.ts';
import type { System, SystemContext } from './system.ts';

export async function openSharded(ctx: SystemContext): Promise<System> {
  // Imported on demand so the other systems run while the library is still being written.
  const { ShardedMikroORM } = (await import('mikro-orm-sharding')) as { ShardedMikroORM: typeof ShardedMikroORMType };
  const { Item } = makeItem();
  const S = ctx.shards;
  const names = shardNames(S);
  const targets = await ctx.dbs.provision('sharded', S);
  const orm = await ShardedMikroORM.init({
    ...ctx.dbs.shared(),
    entities: [Item],
    shards: Object.fromEntries(names.map((name, i) => [name, targets[i]!])),
    shardChooser: ({ entity }) => shardName(shardIndex((entity as Row).id, S)),
    idChooser: ({ id }) => [shardName(shardIndex(Number(id), S))],
    queryChooser: () => names,
  });
  await orm.schema.create();
  const order = { score: 'desc' } as const;
  return {
    name: 'sharded',
    databases: S,
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
      await orm.close();
      await ctx.dbs.release(targets);
    },
  };
}
