// `sharded`: mikro-orm-sharding's ShardedMikroORM over S shards, routed with the workload's hash.
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { makeItem, shardIndex, shardName, shardNames, type Row } from '../workload.ts';
import { entityManagerSystem, type WorkloadEntityManager } from './em-system.ts';
import type { System, SystemContext } from './system.ts';

export async function openSharded(ctx: SystemContext): Promise<System> {
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
    ...(ctx.twoPhase ? { twoPhaseCommit: { coordinatorId: `msbench_${process.pid}`, logShard: names[0]! } } : {}),
  });
  await orm.schema.create();
  const em = () => orm.em.fork() as unknown as WorkloadEntityManager;
  return entityManagerSystem('sharded', S, Item, em, async () => {
    await orm.close();
    await ctx.dbs.release(targets);
  });
}
