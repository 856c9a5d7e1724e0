import { RequestContext, TransactionContext, type CreateContextOptions, type EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

/**
 * The entity managers of one fleet request context, by `contextName` (the shard id), as MikroORM's `RequestContext`
 * holds them; but a shard's fork is made when the request first asks for it (`orm.shard(id).em`, or the request's
 * sharded entity manager), not up front: a request to one shard of a fleet of thousands forks, and opens, that one.
 */
export class RequestForks extends Map<string, EntityManager> {
  readonly #orm: ShardedMikroORM;
  readonly #options: CreateContextOptions | undefined;
  // Where MikroORM's eager `RequestContext.create` would have forked from: the transaction or request context the
  // request context is made in (a nested one forks its parent's fork), captured now, since forks are made later.
  readonly #transaction: EntityManager | undefined;
  readonly #outer: RequestContext | undefined;
  #making: Set<string> | undefined;

  constructor(orm: ShardedMikroORM, options: CreateContextOptions | undefined) {
    super();
    this.#orm = orm;
    this.#options = options;
    this.#transaction = TransactionContext.currentTransactionContext()?.em;
    this.#outer = RequestContext.currentRequestContext();
  }

  override get(name: string): EntityManager | undefined {
    const made = super.get(name);
    if (made !== undefined || !this.#orm.fleet.has(name) || this.#making?.has(name)) {
      return made;
    }
    // Opening the shard (a MikroORM built inside the request) looks its context up again: it finds none, as MikroORM's
    // own `RequestContext.create` builds none before forking.
    (this.#making ??= new Set()).add(name);
    try {
      const parent = this.#transaction?.name === name ? this.#transaction : (this.#outer?.map.get(name) ?? this.#orm.shard(name).em);
      // Resolving the parent's context again would find this very map (the fork is made inside the request).
      const fork = parent.fork({ useContext: true, ...this.#options, disableContextResolution: true });
      this.set(name, fork);
      return fork;
    } finally {
      this.#making.delete(name);
    }
  }

  /** The request's fork of a shard of the fleet, made now if the request had not used the shard yet. */
  readonly fork = (shard: ShardId): SqlEntityManager => this.get(shard) as SqlEntityManager;
}
