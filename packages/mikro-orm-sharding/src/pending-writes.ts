import type { EntityMetadata, EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from './choosers.ts';
import type { ShardScope } from './scope.ts';
import { markStaging, rememberShard, STAGED_SCHEMA } from './shard-of.ts';
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
  readonly #staging = new Map<ShardId, SqlEntityManager>();
  readonly #stagingByEntity = new Map<EntityName<object>, SqlEntityManager>();

  constructor(scope: ShardScope) {
    this.#scope = scope;
  }

  add(entity: object): void {
    this.#entities.add(entity);
  }

  delete(entity: object): void {
    this.#entities.delete(entity);
  }

  clear(): void {
    this.#entities.clear();
  }

  /** The shard decided for an entity by the placing under way, so choosers asking `em.shardOf()` see it. */
  planned(entity: object): ShardId | undefined {
    return this.#planning?.get(entity);
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
    const roots = new Map<ShardId, object[]>();
    for (const root of this.#entities) {
      const shard = planned.get(root)!;
      const group = roots.get(shard);
      if (group) {
        group.push(root);
      } else {
        roots.set(shard, [root]);
      }
    }
    for (const [entity, shard] of planned) {
      rememberShard(entity, shard);
      adoptStaged(this.#scope, entity, shard);
    }
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

/** The first shard whose MikroORM knows the entity (shards may each hold only some entities: main + warehouse). */
function shardWith(orm: ShardedMikroORM, entityName: EntityName<object>): ShardId {
  return orm.shardIds.find(id => orm.shard(id).getMetadata().find(entityName) !== undefined) ?? orm.shardIds[0]!;
}

export function metadataOf<T extends object>(orm: ShardedMikroORM, entityName: EntityName<T>): EntityMetadata<T> {
  return orm.shard(shardWith(orm, entityName as EntityName<object>)).getMetadata().get(entityName);
}
