import { AsyncLocalStorage } from 'node:async_hooks';
import type { CreateContextOptions, IDatabaseDriver } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { runWithContextMap } from '../mikro-internals.ts';
import { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { RequestForks } from './request-forks.ts';

/** One fleet's request context, and the contexts of other fleets it was made inside. */
interface FleetScope {
  readonly orm: ShardedMikroORM;
  readonly em: ShardedEntityManager;
  readonly outer: FleetScope | undefined;
}

const storage = new AsyncLocalStorage<FleetScope>();

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
    return enterFleetContext(em.orm, undefined, next, options);
  }

  /** The request's sharded entity manager for this fleet, if a context is active. */
  static getEntityManager<Id extends string>(orm: ShardedMikroORM<IDatabaseDriver, Id>): ShardedEntityManager<Id> | undefined {
    for (let scope = storage.getStore(); scope !== undefined; scope = scope.outer) {
      if (scope.orm === orm) {
        return scope.em as ShardedEntityManager<Id>;
      }
    }
    return undefined;
  }
}

/**
 * Runs `next` in a new request context of the fleet, its entity manager pinned to `pinned` when one is given
 * (a request's `shardResolver`; `UNKNOWN_SHARD` when the fleet has no such shard, and `next` is not run).
 */
export function enterFleetContext<T>(orm: ShardedMikroORM, pinned: ShardId | undefined, next: () => T, options?: CreateContextOptions): T {
  const forks = new RequestForks(orm, options);
  const em = ShardedEntityManager.adopt(orm, forks.fork);
  if (pinned !== undefined) {
    ShardedEntityManager.pin(em, pinned);
  }
  const scope: FleetScope = { orm, em, outer: storage.getStore() };
  return runWithContextMap(forks, () => storage.run(scope, next));
}
