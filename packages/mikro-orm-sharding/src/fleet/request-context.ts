import { AsyncLocalStorage } from 'node:async_hooks';
import type { CreateContextOptions, IDatabaseDriver } from '@mikro-orm/core';
import { runWithContextMap } from '../mikro-internals.ts';
import { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { RequestForks } from './request-forks.ts';

const storage = new AsyncLocalStorage<ReadonlyMap<ShardedMikroORM, ShardedEntityManager>>();

/**
 * A request-scoped sharded entity manager, like MikroORM's `RequestContext`: inside `next`, `orm.em` acts on a
 * fresh fork, and each shard's own `orm.shard(id).em` resolves to that fork's entity manager for the shard
 * (MikroORM's `RequestContext` with one `contextName` per shard). A shard is forked when the request first uses it,
 * so a request that touches one shard of a large fleet forks (and opens) that shard alone.
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
    const forks = new RequestForks(orm, options);
    const scoped = new Map(storage.getStore());
    scoped.set(
      orm,
      ShardedEntityManager.adopt(orm, shard => forks.fork(shard)),
    );
    return runWithContextMap(forks, () => storage.run(scoped, next));
  }

  /** The request's sharded entity manager for this fleet, if a context is active. */
  static getEntityManager<Id extends string>(orm: ShardedMikroORM<IDatabaseDriver, Id>): ShardedEntityManager<Id> | undefined {
    return storage.getStore()?.get(orm) as ShardedEntityManager<Id> | undefined;
  }
}
