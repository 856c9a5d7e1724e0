// `sharded`: mikro-orm-sharding's ShardedMikroORM over S shards, routed with the workload's hash (hand-written
// choosers, `--strategy modulo`, the default) or by a `shardBy` declaration of Item's id (`hash`, `jump`, `range`).
import { hash, jump, range, ShardedMikroORM, type ShardedMikroORMOptions, type ShardStrategy } from 'mikro-orm-sharding';
import type { StrategyName } from '../args.ts';
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
    ...routing(ctx.strategy, names, ctx.rows),
    ...(ctx.twoPhase ? { twoPhaseCommit: { coordinatorId: `msbench_${process.pid}`, logShard: names[0]! } } : {}),
  });
  await orm.schema.create();
  const em = () => orm.em.fork() as unknown as WorkloadEntityManager;
  return entityManagerSystem('sharded', S, Item, em, async () => {
    await orm.close();
    await ctx.dbs.release(targets);
  });
}

/** The routing options of a strategy: the workload's own choosers for `modulo`, else Item declared by its id. */
function routing(strategy: StrategyName, names: readonly string[], rows: number): Partial<ShardedMikroORMOptions> {
  const S = names.length;
  if (strategy === 'modulo') {
    return {
      shardChooser: ({ entity }) => shardName(shardIndex((entity as Row).id, S)),
      idChooser: ({ id }) => [shardName(shardIndex(Number(id), S))],
      queryChooser: () => names,
    };
  }
  const strategies: Record<Exclude<StrategyName, 'modulo'>, () => ShardStrategy> = {
    hash: () => hash({ shards: names }),
    jump: () => jump({ shards: names }),
    // S equal ranges of the ids 0 ... rows - 1.
    range: () => range(names.map((shard, i) => (i === 0 ? { shard } : { shard, from: Math.ceil((i * rows) / S) }))),
  };
  return { shardBy: { Item: { key: 'id', strategy: strategies[strategy]() } } };
}
