import { ChangeSetType, type EntityManager, type EventSubscriber, type FlushEventArgs, type UnitOfWork } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import type { Fleet } from '../fleet/fleet.ts';
import type { ShardScope } from '../scope.ts';
import { labelOf } from '../write/write-plan.ts';
import { managedEntities } from '../mikro-internals.ts';

// Shards declared `readOnly: true`: every write routed to one is refused before anything is written anywhere.

/** Whether a shard was declared `readOnly: true`. */
export function isReadOnly(fleet: Fleet, shard: ShardId): boolean {
  return fleet.options(shard)?.readOnly === true;
}

/**
 * The shards a fleet-wide write (schema, migrations) works on: the writable ones of `ids`. Shards named explicitly
 * (`explicit`) must all be writable, or `READ_ONLY_SHARD` is thrown before any shard is touched.
 */
export function writableShards(fleet: Fleet, ids: readonly ShardId[], operation: string, explicit: boolean): readonly ShardId[] {
  const writable = ids.filter(id => !isReadOnly(fleet, id));
  if (explicit && writable.length < ids.length) {
    const shard = ids.find(id => isReadOnly(fleet, id))!;
    throw new ShardingError(
      'READ_ONLY_SHARD',
      `${operation} was given shard ${JSON.stringify(shard)}, which is read-only (\`readOnly: true\`); leave it out of \`shards\`. Nothing was done.`,
      { shard, value: shard },
    );
  }
  return writable.length === ids.length ? ids : writable;
}

/**
 * Refuses a flush of this sharded entity manager that would write on one of its read-only shards' forks (a loaded
 * entity changed or removed, an entity persisted through `em.on(shard)`), before any shard flushes.
 */
export function refuseReadOnlyFlush(scope: ShardScope): void {
  for (const [shard, fork] of scope.forks) {
    if (isReadOnly(scope.orm.fleet, shard)) {
      refusePendingWrites(fork, shard, 'em.flush()');
    }
  }
}

/**
 * Guards every entity manager of the read-only shards (their forks share the shard's event manager): a flush that
 * would write there, an auto-flush before a query included, throws `READ_ONLY_SHARD` before its transaction starts.
 * `em.fork({ freshEventManager: true })` of a shard's own MikroORM is not guarded.
 */
export function guardReadOnlyShards(fleet: Fleet): void {
  fleet.onInstance((id, orm) => {
    if (isReadOnly(fleet, id)) {
      const guard: EventSubscriber = {
        beforeFlush({ em }: FlushEventArgs): void {
          refusePendingWrites(em, id, 'a flush');
        },
      };
      orm.em.getEventManager().registerSubscriber(guard);
    }
  });
}

/**
 * Throws when a flush of this entity manager would write: MikroORM's own change sets, computed as its flush
 * computes them (again, by the flush that follows, which finds the same ones).
 */
function refusePendingWrites(em: EntityManager, shard: ShardId, source: string): void {
  const uow: UnitOfWork = em.getUnitOfWork(false);
  if (uow.getPersistStack().size === 0 && uow.getRemoveStack().size === 0 && managedEntities(em)[Symbol.iterator]().next().done) {
    return;
  }
  uow.computeChangeSets();
  const [change] = uow.getChangeSets();
  if (change) {
    throw ShardingError.readOnlyShard(OPERATIONS[change.type], labelOf(change.entity), shard, source);
  }
  const [collection] = uow.getCollectionUpdates();
  if (collection) {
    throw ShardingError.readOnlyShard(`update ${collection.property.name} of`, labelOf(collection.owner), shard, source);
  }
}

const OPERATIONS: Record<ChangeSetType, string> = {
  [ChangeSetType.CREATE]: 'insert',
  [ChangeSetType.UPDATE]: 'update',
  [ChangeSetType.DELETE]: 'delete',
  [ChangeSetType.DELETE_EARLY]: 'delete',
  [ChangeSetType.UPDATE_EARLY]: 'update',
};
