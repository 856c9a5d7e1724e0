import { FlushMode, type EntityManager, type EntityName, type EventSubscriber, type FlushEventArgs } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { Fleet } from '../fleet/fleet.ts';
import type { ShardScope } from '../scope.ts';

// Read your writes: a shard's fork that has written reads from the shard's primary from then on. MikroORM itself
// sends each read to a replica when `preferReadReplicas` (its default), so a read right after a write may not see it.

/** Forks of replicated shards that have written through a flush (theirs, or an auto-flush) or a native write. */
const written = new WeakSet<EntityManager>();

const witness: EventSubscriber = {
  afterFlush({ em, uow }: FlushEventArgs): void {
    if (uow.getChangeSets().length > 0 || uow.getCollectionUpdates().length > 0 || uow.getExtraUpdates().size > 0) {
      written.add(em);
    }
  },
};

/** Whether a shard reads from replicas: it has `replicas`, and MikroORM prefers them or a call can ask for one. */
export function hasReplicas(fleet: Fleet, shard: ShardId): boolean {
  return (fleet.options(shard)?.replicas?.length ?? 0) > 0;
}

/**
 * Watches the flushes of every entity manager of the replicated shards (forks share their shard's event manager);
 * true when the fleet has such a shard.
 */
export function witnessWrites(fleet: Fleet): boolean {
  fleet.onInstance((id, orm) => {
    if (hasReplicas(fleet, id)) {
      orm.em.getEventManager().registerSubscriber(witness);
    }
  });
  // Shards added later with replicas are witnessed too, but only a fleet that starts with one reads its writes back.
  return fleet.ids.some(id => hasReplicas(fleet, id));
}

/** Records a write that bypasses the unit of work (`insert`, `upsert`, `nativeUpdate`, ...) on these shards' forks. */
export function markWritten(scope: ShardScope, shards: readonly ShardId[]): void {
  if (!scope.orm.routing.readYourWrites) {
    return;
  }
  for (const shard of shards) {
    if (hasReplicas(scope.orm.fleet, shard)) {
      written.add(scope.fork(shard));
    }
  }
}

/**
 * The options of a read on one shard: with `connectionType: 'write'` once this entity manager has written to that
 * shard (or is about to, by the auto-flush the read starts with), unless the call chose a `connectionType` itself.
 * Costs one property read on a fleet without replicas.
 */
export function readOn<T extends object, O extends { connectionType?: unknown; flushMode?: unknown }>(
  scope: ShardScope,
  shard: ShardId,
  entityName: EntityName<T>,
  options: O,
): O {
  if (!scope.orm.routing.readYourWrites || options.connectionType !== undefined) {
    return options;
  }
  const fork = scope.forks.get(shard);
  if (fork === undefined || !(written.has(fork) || (hasReplicas(scope.orm.fleet, shard) && wouldAutoFlush(fork, entityName, options.flushMode)))) {
    return options;
  }
  return { ...options, connectionType: 'write' };
}

/**
 * Whether `em.find` on this fork would flush before it queries. The fork's own flush mode (`fork({ flushMode })`) is
 * not readable, so this may say yes where MikroORM then does not flush: the read then goes to the primary anyway.
 */
function wouldAutoFlush<T extends object>(fork: SqlEntityManager, entityName: EntityName<T>, flushMode: unknown): boolean {
  const mode = flushMode ?? fork.config.get('flushMode');
  if (mode === FlushMode.COMMIT) {
    return false;
  }
  return mode === FlushMode.ALWAYS || fork.getUnitOfWork(false).shouldAutoFlush(fork.getMetadata().get(entityName));
}
