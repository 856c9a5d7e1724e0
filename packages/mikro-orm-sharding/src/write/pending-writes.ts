import { AsyncLocalStorage } from 'node:async_hooks';
import type { EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { ShardScope } from '../scope.ts';
import { markStaging, STAGED_SCHEMA } from './shard-of.ts';
import { shardWith } from '../fleet/fleet-metadata.ts';
import { groupInto } from '../group.ts';
import { adoptStaged, checkManagedReferences, planWrites } from './write-plan.ts';
import { planMoves, type MovePlan } from '../moves/plan.ts';

const NOTHING_PLANNED: ReadonlyMap<object, ShardId> = new Map();

/** The placing under way in this async context: a chooser's reads through `em` run inside it. */
const placing = new AsyncLocalStorage<PendingWrites>();

/**
 * The write side of one sharded entity manager: new entities waiting for their shard, the staging forks they
 * are made on, and the placing of them (choose, validate, then persist on their shards' forks).
 */
export class PendingWrites {
  readonly #scope: ShardScope;
  readonly #entities = new Set<object>();
  #planning: ReadonlyMap<object, ShardId> | undefined;
  /** Placings under way (more than one only when the entity manager is used concurrently). */
  #placings = 0;
  // Placed but not yet flushed: MikroORM tells an entity's entity manager (so its shard) only once it is written.
  readonly #placed: ReadonlyMap<object, ShardId>[] = [];
  readonly #staging = new Map<ShardId | undefined, SqlEntityManager>();
  readonly #stagingByEntity = new Map<EntityName<object>, SqlEntityManager>();
  /** `em.move()` calls since the last successful flush. */
  readonly #moveRequests = new Map<object, ShardId>();
  /** The moves of the flush under way. */
  #moves: MovePlan | undefined;
  /** Entities moved by flushes of this entity manager, with the shard they left (a transaction's, for its parent). */
  #movedAway: Map<object, ShardId> | undefined;

  constructor(scope: ShardScope) {
    this.#scope = scope;
  }

  get size(): number {
    return this.#entities.size;
  }

  add(entity: object): void {
    this.#entities.add(entity);
  }

  delete(entity: object): void {
    this.#entities.delete(entity);
  }

  /**
   * Takes over what another entity manager's next flush would write: a transaction forked from it writes those
   * entities too, as MikroORM's transaction fork does with its parent's. Returns them.
   */
  inherit(from: PendingWrites): readonly object[] {
    const entities = [...from.#entities];
    entities.forEach(entity => this.#entities.add(entity));
    this.#placed.push(...from.#placed);
    // Moves asked of the parent are made by the transaction too; once they are, the parent's requests find the
    // entities on their new shards already, and do nothing.
    from.#moveRequests.forEach((shard, entity) => this.#moveRequests.set(entity, shard));
    return entities;
  }

  /** Asks for an entity to move to another shard at the next flush (`em.move()`). */
  requestMove(entity: object, shard: ShardId): void {
    this.#moveRequests.set(entity, shard);
  }

  /** The moves of the flush under way, once {@link place} has planned them. */
  get moves(): MovePlan | undefined {
    return this.#moves;
  }

  /** The flush is over (written or failed): the moves' targets no longer answer {@link decided}. */
  endMoves(): void {
    this.#moves = undefined;
  }

  /** Entities this entity manager's flushes moved, with the shard they left; forgotten as they are taken. */
  takeMovedAway(): ReadonlyMap<object, ShardId> | undefined {
    const moved = this.#movedAway;
    this.#movedAway = undefined;
    return moved;
  }

  /** Forgets pending entities and the shards decided for unflushed ones (the shard forks are being cleared too). */
  clear(): void {
    this.#entities.clear();
    this.#moveRequests.clear();
    this.#placed.length = 0;
    this.#staging.forEach(staging => staging.clear());
  }

  /**
   * The shard decided for an entity by this entity manager and not yet flushed: by the placing under way (so
   * choosers asking `em.shardOf()` see it), or by an earlier one.
   */
  decided(entity: object): ShardId | undefined {
    const planned = this.#planning?.get(entity);
    if (planned !== undefined) {
      return planned;
    }
    const moving = this.#moves?.targets.get(entity);
    if (moving !== undefined) {
      return moving;
    }
    for (const placed of this.#placed) {
      const shard = placed.get(entity);
      if (shard !== undefined) {
        return shard;
      }
    }
    return undefined;
  }

  /**
   * Whether the caller is a chooser called by this entity manager's placing (in its async context). Its reads must
   * neither place the entities being placed (that would call the chooser again, forever) nor flush anything.
   */
  insideChooser(): boolean {
    // The field first: outside a placing (nearly always) no async context is looked up.
    return this.#placings > 0 && placing.getStore() === this;
  }

  /**
   * After a successful flush every placed entity is managed, and MikroORM knows its entity manager. The staging
   * forks let go of what they made (entities, references): the shard forks hold them now.
   */
  flushed(): void {
    const moves = this.#moves;
    if (moves !== undefined) {
      this.#movedAway ??= new Map();
      for (const [entity, from] of moves.sources) {
        if (!moves.fresh.has(entity)) {
          this.#movedAway.set(entity, from);
        }
      }
    }
    this.#moveRequests.clear();
    this.#placed.length = 0;
    if (this.#entities.size === 0) {
      this.#staging.forEach(staging => staging.clear());
    }
  }

  /**
   * Decides the shard of every pending entity and persists it on that shard's fork; writes nothing. With
   * `checkManaged` (a flush) it also checks the relations of entities the forks already manage. Throws a
   * `ShardingError` before persisting anything.
   */
  async place(checkManaged: boolean): Promise<void> {
    if (checkManaged && (this.#moveRequests.size > 0 || this.#scope.orm.shardKeys.size > 0)) {
      // Moves first: a new entity that follows a moving one is placed where that one goes.
      this.#moves = await planMoves(this.#scope, {
        requests: this.#moveRequests,
        placed: () => this.#placed.flatMap(placed => [...placed]),
        mode: this.#scope.transaction?.commitMode,
      });
    }
    if (this.#entities.size === 0) {
      // Nothing to place (a flush of loaded entities only): no chooser runs, so no placing context either.
      if (checkManaged) {
        checkManagedReferences(this.#scope, NOTHING_PLANNED, this.#moves?.targets);
      }
      return;
    }
    const planned = new Map<object, ShardId>();
    this.#planning = planned;
    this.#placings++;
    try {
      await placing.run(this, () => planWrites(this.#scope, this.#entities, planned));
      if (checkManaged) {
        checkManagedReferences(this.#scope, planned, this.#moves?.targets);
      }
    } finally {
      this.#planning = undefined;
      this.#placings--;
    }
    // One pass: adopt every planned entity, and group the pending ones (the roots) by shard to persist them. A loaded
    // entity persisted again that moves is the move's to write.
    const roots = new Map<ShardId, object[]>();
    const moving = this.#moves?.targets;
    for (const [entity, shard] of planned) {
      if (moving?.has(entity)) {
        continue;
      }
      adoptStaged(this.#scope, entity, shard);
      if (this.#entities.has(entity)) {
        groupInto(roots, shard, entity);
      }
    }
    this.#placed.push(planned);
    for (const [shard, group] of roots) {
      this.#scope.fork(shard).persist(group);
    }
    this.#entities.clear();
  }

  /** Where new entities wait for their shard: a never-flushed fork of the first shard that knows the entity. */
  stagingFork(entityName: EntityName<object>): SqlEntityManager {
    const cached = this.#stagingByEntity.get(entityName);
    if (cached) {
      return cached;
    }
    const orm = this.#scope.orm;
    const home = shardWith(orm, entityName);
    let staging = this.#staging.get(home);
    if (!staging) {
      staging = orm.fleet.template(home).em.fork({ disableContextResolution: true, schema: STAGED_SCHEMA }) as SqlEntityManager;
      markStaging(staging);
      this.#staging.set(home, staging);
    }
    this.#stagingByEntity.set(entityName, staging);
    return staging;
  }
}
