import { AsyncLocalStorage } from 'node:async_hooks';
import { RequestContext, type CreateContextOptions, type IDatabaseDriver } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

const storage = new AsyncLocalStorage<ReadonlyMap<ShardedMikroORM, ShardedEntityManager>>();

/**
 * A request-scoped sharded entity manager, like MikroORM's `RequestContext`: inside `next`, `orm.em` acts on a
 * fresh fork, and each shard's own `orm.shard(id).em` resolves to that fork's entity manager for the shard
 * (MikroORM's `RequestContext` with one `contextName` per shard).
 *
 * @example
 * ```ts
 * app.use((req, res, next) => ShardedRequestContext.create(orm.em, next));
 * ```
 */
export class ShardedRequestContext {
  /** Runs `next` with a fresh request context for the fleet of `em`. */
  static create<T>(em: ShardedEntityManager, next: () => T, options?: CreateContextOptions): T {
    const orm = em.orm;
    const shardEms = orm.shardIds.map(id => orm.shard(id).em);
    return RequestContext.create(
      shardEms,
      () => {
        const forks = new Map<ShardId, SqlEntityManager>();
        for (const id of orm.shardIds) {
          forks.set(id, RequestContext.getEntityManager(id) as SqlEntityManager);
        }
        const scoped = new Map(storage.getStore());
        scoped.set(orm, ShardedEntityManager.adopt(orm, forks));
        return storage.run(scoped, next);
      },
      options,
    );
  }

  /** The request's sharded entity manager for this fleet, if a context is active. */
  static getEntityManager<Id extends string>(orm: ShardedMikroORM<IDatabaseDriver, Id>): ShardedEntityManager<Id> | undefined {
    return storage.getStore()?.get(orm) as ShardedEntityManager<Id> | undefined;
  }
}
