import type { CreateOptions, EntityName, RequiredEntityData } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { forkOfOption } from '../route.ts';
import { refuseReadOnlyFlush } from '../routing/read-only.ts';
import type { ShardScope } from '../scope.ts';
import { flushShards } from '../transactions/flush.ts';
import type { ShardTransaction } from '../transactions/transaction.ts';
import { entitiesOf } from './entities-of.ts';
import type { PendingWrites } from './pending-writes.ts';
import { rememberShard } from './shard-of.ts';
import { labelOf } from './write-plan.ts';

/**
 * The options object `em.create()` and `em.findOne()` default to: compared by identity, so that the common call
 * without options neither copies nor destructures one.
 */
export const NO_OPTIONS = Object.freeze({});
const DO_NOT_PERSIST = Object.freeze({ persist: false });

/** `em.create()`: bound to `shard` when given, else built on the staging fork and placed by the shard chooser at flush. */
export function createEntity<T extends object>(
  scope: ShardScope,
  pending: PendingWrites,
  entityName: EntityName<T>,
  data: RequiredEntityData<T>,
  options: CreateOptions<boolean> & { readonly shard?: ShardId },
): T {
  if (options === NO_OPTIONS) {
    const staging = pending.stagingFork(entityName as EntityName<object>);
    const entity = staging.create(entityName, data as never, DO_NOT_PERSIST) as T;
    if (staging.config.get('persistOnCreate')) {
      pending.add(entity);
    }
    return entity;
  }
  const { shard, ...rest } = options;
  const target =
    shard === undefined ? pending.stagingFork(entityName as EntityName<object>) : forkOfOption(scope, entityName as EntityName<object>, shard, true);
  const entity = target.create(entityName, data as never, { ...rest, persist: false }) as T;
  if (shard !== undefined) {
    rememberShard(entity, shard);
  }
  if (rest.persist ?? target.config.get('persistOnCreate')) {
    pending.add(entity);
  }
  return entity;
}

/** `em.persist()`: marks entities for writing at the next flush. */
export function persistAll(orm: ShardedMikroORM, pending: PendingWrites, entity: object | Iterable<object>): void {
  for (const item of entitiesOf(orm, entity, 'persist')) {
    pending.add(item);
  }
}

/** `em.remove()`: marks entities for removal at the next flush, on their own shards' forks. */
export function removeAll(scope: ShardScope, pending: PendingWrites, entity: object | Iterable<object>): void {
  for (const target of entitiesOf(scope.orm, entity, 'remove')) {
    pending.delete(target);
    const shard = scope.shardOf(target);
    if (shard !== undefined) {
      scope.fork(shard).remove(target);
    }
  }
}

/** `em.move()`: asks the next flush to move placed entities to `shard`. */
export function moveAll(scope: ShardScope, pending: PendingWrites, entity: object | Iterable<object>, shard: ShardId): void {
  scope.fork(shard, 'em.move()');
  for (const target of entitiesOf(scope.orm, entity, 'move')) {
    if (scope.shardOf(target) === undefined) {
      throw ShardingError.unplacedEntity('move', labelOf(target));
    }
    pending.requestMove(target, shard);
  }
}

/** `em.flush()`: places what waits for a shard (checking it all before any write), then flushes every shard fork. */
export async function flushPending(scope: ShardScope, pending: PendingWrites, transaction: ShardTransaction | undefined): Promise<void> {
  if (pending.insideChooser()) {
    throw ShardingError.flushInsideChooser();
  }
  try {
    await pending.place(true);
    refuseReadOnlyFlush(scope);
    await flushShards(scope, transaction, pending.moves);
    pending.flushed();
  } finally {
    pending.endMoves();
  }
}
