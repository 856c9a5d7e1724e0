import type { EntityMetadata, EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from './choosers.ts';
import type { ShardScope } from './scope.ts';
import { markStaging, STAGED_SCHEMA } from './shard-of.ts';
import type { ShardedMikroORM } from './ShardedMikroORM.ts';
import { adoptStaged, checkManagedReferences, planWrites } from './write-plan.ts';

/**
 * The write side of one sharded entity manager: new entities waiting for their shard, the staging forks they
 * are made on, and the placing of them (choose, validate, then persist on their shards' forks).
 */
export class PendingWrites {
  readonly #scope: ShardScope;
  readonly #entities = new Set<object>();
  #planning: ReadonlyMap<object, ShardId> | undefined;
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

  /** Forgets pending entities and the shards decided for unflushed ones (the shard forks are being cleared too). */
  clear(): void {
    this.#entities.clear();
    this.#placed.length = 0;
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

  /** After a successful flush every placed entity is managed, and MikroORM knows its entity manager. */
  flushed(): void {
    this.#placed.length = 0;
  }

  /**
   * Decides the shard of every pending entity and persists it on that shard's fork; writes nothing. With
   * `checkManaged` (a flush) it also checks the relations of entities the forks already manage. Throws a
   * `ShardingError` before persisting anything.
   */
  async place(checkManaged: boolean): Promise<void> {
    if (this.#entities.size === 0 && !checkManaged) {
      return;
    }
    const planned = new Map<object, ShardId>();
    this.#planning = planned;
    try {
      await planWrites(this.#scope, this.#entities, planned);
      if (checkManaged) {
        checkManagedReferences(this.#scope, planned);
      }
    } finally {
      this.#planning = undefined;
    }
    // One pass: adopt every planned entity, and group the pending ones (the roots) by shard to persist them.
    const roots = new Map<ShardId, object[]>();
    for (const [entity, shard] of planned) {
      adoptStaged(this.#scope, entity, shard);
      if (this.#entities.has(entity)) {
        const group = roots.get(shard);
        if (group) {
          group.push(entity);
        } else {
          roots.set(shard, [entity]);
        }
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

const knowledge = new WeakMap<ShardedMikroORM, Map<EntityName<object>, ReadonlySet<ShardId>>>();

/**
 * The shards whose MikroORM knows an entity (shards may each hold only some entities: main + warehouse),
 * computed once per fleet and entity: metadata does not change after init, and lookups ask on every call.
 */
export function shardsKnowing(orm: ShardedMikroORM, entityName: EntityName<object>): ReadonlySet<ShardId> {
  let known = knowledge.get(orm);
  if (!known) {
    known = new Map();
    knowledge.set(orm, known);
  }
  let shards = known.get(entityName);
  if (!shards) {
    shards = new Set(orm.shardIds.filter(id => orm.shard(id).getMetadata().find(entityName) !== undefined));
    known.set(entityName, shards);
  }
  return shards;
}

/** The first shard that knows the entity (the first shard of all when none does: MikroORM will say so). */
function shardWith(orm: ShardedMikroORM, entityName: EntityName<object>): ShardId {
  const [first] = shardsKnowing(orm, entityName);
  return first ?? orm.shardIds[0]!;
}

const metadata = new WeakMap<ShardedMikroORM, Map<EntityName<object>, EntityMetadata>>();

/** An entity's metadata, from the first shard that knows it; asked on every read, so kept per fleet. */
export function metadataOf<T extends object>(orm: ShardedMikroORM, entityName: EntityName<T>): EntityMetadata<T> {
  let known = metadata.get(orm);
  if (!known) {
    known = new Map();
    metadata.set(orm, known);
  }
  let meta = known.get(entityName as EntityName<object>);
  if (!meta) {
    meta = orm.shard(shardWith(orm, entityName as EntityName<object>)).getMetadata().get(entityName) as EntityMetadata;
    known.set(entityName as EntityName<object>, meta);
  }
  return meta as EntityMetadata<T>;
}
