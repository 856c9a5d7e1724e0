import { AsyncLocalStorage } from 'node:async_hooks';
import type { EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { ShardScope } from '../scope.ts';
import { markStaging, STAGED_SCHEMA } from './shard-of.ts';
import { shardWith } from '../fleet/fleet-metadata.ts';
import { groupInto } from '../group.ts';
import { adoptStaged, checkManagedReferences, planWrites } from './write-plan.ts';
import { checkKeyChanges } from '../routing/key-changes.ts';

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
  readonly #staging = new Map<ShardId, SqlEntityManager>();
  readonly #stagingByEntity = new Map<EntityName<object>, SqlEntityManager>();

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
    return entities;
  }

  /** Forgets pending entities and the shards decided for unflushed ones (the shard forks are being cleared too). */
  clear(): void {
    this.#entities.clear();
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
    if (this.#entities.size === 0) {
      // Nothing to place (a flush of loaded entities only): no chooser runs, so no placing context either.
      if (checkManaged) {
        checkManagedReferences(this.#scope, NOTHING_PLANNED);
        if (this.#scope.orm.shardKeys.size > 0) {
          await checkKeyChanges(this.#scope);
        }
      }
      return;
    }
    const planned = new Map<object, ShardId>();
    this.#planning = planned;
    this.#placings++;
    try {
      await placing.run(this, () => planWrites(this.#scope, this.#entities, planned));
      if (checkManaged) {
        checkManagedReferences(this.#scope, planned);
        await checkKeyChanges(this.#scope);
      }
    } finally {
      this.#planning = undefined;
      this.#placings--;
    }
    // One pass: adopt every planned entity, and group the pending ones (the roots) by shard to persist them.
    const roots = new Map<ShardId, object[]>();
    for (const [entity, shard] of planned) {
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
      staging = orm.shard(home).em.fork({ disableContextResolution: true, schema: STAGED_SCHEMA }) as SqlEntityManager;
      markStaging(staging);
      this.#staging.set(home, staging);
    }
    this.#stagingByEntity.set(entityName, staging);
    return staging;
  }
}
