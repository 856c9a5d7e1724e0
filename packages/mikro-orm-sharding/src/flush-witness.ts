import type { EntityManager, EventSubscriber, FlushEventArgs, MikroORM } from '@mikro-orm/core';

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

/** Lets {@link flushed} tell which of this shard's flushes wrote something. */
export function watchFlushes(orm: MikroORM): void {
  orm.em.getEventManager().registerSubscriber(witness);
}

/** Flushes an entity manager; resolves to whether the flush wrote (and committed) anything. */
export async function flushed(em: EntityManager): Promise<boolean> {
  wrote.delete(em);
  await em.flush();
  return wrote.has(em);
}
