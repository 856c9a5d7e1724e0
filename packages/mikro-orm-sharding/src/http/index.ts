export { shardedContext } from './connect.ts';
export { withShardedContext, type NodeShardedContextOptions } from './node.ts';
export { runInRequestContext, type AnyShardedMikroORM, type ShardedContextOptions } from './request-scope.ts';
