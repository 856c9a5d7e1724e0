import type { EntityManager, EventSubscriber, FlushEventArgs } from '@mikro-orm/core';

/** Entity managers whose last flush finished having written something. */
const wrote = new WeakSet<EntityManager>();

/**
 * Sees every flush of a shard's entity managers end. `afterFlush` fires only once a flush has written (and, in its
 * own transaction, committed) everything, or found nothing to write: the change sets tell the two apart.
 */
const witness: EventSubscriber = {
  afterFlush({ em, uow }: FlushEventArgs): void {
    if (uow.getChangeSets().length > 0 || uow.getCollectionUpdates().length > 0 || uow.getExtraUpdates().size > 0) {
      wrote.add(em);
    }
  },
};

/** Flushes an entity manager; resolves to whether the flush wrote (and committed) anything. */
export async function flushed(em: EntityManager): Promise<boolean> {
  // Registered on the entity manager's own event manager (forks may have a fresh one); a no-op once there.
  em.getEventManager().registerSubscriber(witness);
  wrote.delete(em);
  await em.flush();
  return wrote.has(em);
}
