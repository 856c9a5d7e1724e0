import type { MikroORM } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';

/**
 * Names the shard in every query its MikroORM logs from an entity manager. The root entity manager's logger context
 * is inherited by its forks and merged into each query's log context, as MikroORM does for a request id: custom
 * loggers read `context.shard`, and the default logger prints the label, `[query] (shard s1) select ...`. A
 * query's own `logging: { label }` replaces the label (not `shard`).
 */
export function nameShardInLogs(orm: MikroORM, shard: ShardId): void {
  Object.assign(orm.em.getLoggerContext({ disableContextResolution: true }), { shard, label: `shard ${shard}` });
}
