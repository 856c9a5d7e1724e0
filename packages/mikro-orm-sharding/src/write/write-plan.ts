import { Collection, Reference, ReferenceKind, wrap, type Dictionary, type EntityMetadata, type EntityName, type EntityProperty } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import { checkEntityOnShard } from '../route.ts';
import { checkPlaced, shardOfNew } from '../routing/resolve.ts';
import type { ShardScope } from '../scope.ts';
import { explicitShard, isStaged, shardOfWrapped, STAGED_SCHEMA } from './shard-of.ts';
import { entityHelper, managedEntities, managerOf, metaOf } from '../mikro-internals.ts';
import { fixedBy, fixedShard } from '../routing/fixed-shard.ts';
import { isReadOnly } from '../routing/read-only.ts';
import { onEveryShard } from '../routing/broadcast.ts';

/**
 * Decides the shard of every new entity a flush will write, and checks that no reference crosses shards, before
 * anything is written. New entities reached through a relation of an entity being written go where it goes, as
 * MikroORM's cascade persist writes them together; the others are the shard chooser's to place.
 *
 * `planned` is filled as decisions are made so that `em.shardOf()` inside a chooser already sees them.
 * Throws {@link ShardingError}; then nothing was persisted anywhere.
 */
export async function planWrites(scope: ShardScope, roots: Iterable<object>, planned: Map<object, ShardId>): Promise<void> {
  const queue: object[] = [];
  const fleet = scope.orm.fleet;
  const declared = scope.orm.shardKeys.size > 0;
  const broadcast = scope.orm.shardKeys.hasBroadcast;
  for (const root of roots) {
    if (!planned.has(root)) {
      // The hot path of a bulk insert: read MikroORM's helper once per entity.
      const wrapped = entityHelper(root);
      const earlier = scope.decided(root);
      const remembered = earlier === undefined ? shardOfWrapped(root, wrapped, fleet) : undefined;
      const own = earlier ?? remembered;
      const known = own ?? chooseShard(scope, root, wrapped.__meta);
      const shard = known instanceof Promise ? await known : known;
      // Entities reached through its relations need no check: MikroORM discovers related entities on every shard.
      declares(scope, wrapped.__meta.class, root, shard);
      if (isReadOnly(fleet, shard)) {
        throw ShardingError.readOnlyShard(
          'write',
          labelOf(root),
          shard,
          own === undefined ? routedBy(scope, wrapped.__meta.className) : 'the shard it belongs to',
        );
      }
      if (declared && remembered !== undefined && explicitShard(root) !== undefined) {
        await checkDeclared(scope, root, shard, 'the { shard } option');
      }
      planned.set(root, shard);
      if (wrapped.__meta.relations.length > 0) {
        queue.push(root);
      }
    }
    // Walk as we go: entities reached from this root are placed before later roots ask the chooser.
    const reached: object[] = [];
    while (queue.length > 0) {
      const entity = queue.pop()!;
      const shard = planned.get(entity)!;
      forEachRelated(entity, (target, prop) => {
        const targetShard = planned.get(target) ?? scope.shardOf(target);
        if (targetShard === undefined) {
          if (isNew(target)) {
            planned.set(target, shard);
            queue.push(target);
            if (declared) {
              reached.push(target);
            }
          }
          return;
        }
        // A broadcast row is on every shard (and relates to broadcast rows only): any shard may reference it.
        if (targetShard !== shard && !(broadcast && onEveryShard(scope.orm, target))) {
          throw ShardingError.crossShardReference(labelOf(entity), shard, prop.name, labelOf(target), targetShard);
        }
      });
    }
    // A declared entity placed with the entity that reaches it must still be where its own key puts it.
    for (const target of reached) {
      await checkDeclared(scope, target, planned.get(target)!, 'the entity that reaches it in this flush');
    }
  }
}

/** Checks a new declared entity whose shard was not decided by its declaration (a no-op for an undeclared one). */
export function checkDeclared(scope: ShardScope, entity: object, shard: ShardId, source: string): MaybePromise<void> {
  const route = scope.orm.shardKeys.of(metaOf(entity));
  return route === undefined ? undefined : checkPlaced(scope, route, entity, shard, source, () => labelOf(entity));
}

/**
 * Checks the entities a shard's fork already manages: a relation set since they were loaded must not point at an
 * entity of another shard (MikroORM would write the foreign key as is, dangling or failing on that database).
 */
export function checkManagedReferences(scope: ShardScope, planned: ReadonlyMap<object, ShardId>, moving?: ReadonlyMap<object, ShardId>): void {
  const broadcast = scope.orm.shardKeys.hasBroadcast;
  for (const [shard, fork] of scope.forks) {
    for (const entity of managedEntities(fork)) {
      if (metaOf(entity).relations.length === 0) {
        continue;
      }
      // An entity about to move is checked where it goes.
      const own = moving?.get(entity) ?? shard;
      forEachRelated(entity, (target, prop) => {
        const targetShard = planned.get(target) ?? scope.shardOf(target);
        if (targetShard !== undefined && targetShard !== own && !(broadcast && onEveryShard(scope.orm, target))) {
          // Seen from a loaded collection, the row that holds the foreign key is the item: name it, and its owning
          // side, so that the advice (route or move the item) points at the row that has to change.
          if (prop.kind === ReferenceKind.ONE_TO_MANY && prop.mappedBy) {
            throw ShardingError.crossShardReference(labelOf(target), targetShard, prop.mappedBy, labelOf(entity), own);
          }
          throw ShardingError.crossShardReference(labelOf(entity), own, prop.name, labelOf(target), targetShard);
        }
      });
    }
  }
}

/**
 * Moves what an entity got from the staging fork to its shard: the staging schema is dropped (so the shard's
 * fork gives its own), and references made before the shard was known (`em.create(Book, { author: 1 })`) become
 * references of the shard's fork, so lazy loads and the identity map stay on that shard.
 */
export function adoptStaged(scope: ShardScope, entity: object, shard: ShardId): void {
  const wrapped = wrap(entity);
  if (wrapped.getSchema() === STAGED_SCHEMA) {
    wrapped.setSchema(undefined);
  }
  const relations = metaOf(entity).relations;
  if (relations.length === 0) {
    return;
  }
  const fork = scope.fork(shard);
  const data = entity as Dictionary;
  for (const prop of relations) {
    const value = data[prop.name];
    if (value instanceof Collection) {
      if (value.isInitialized() && value.getItems(false).some(isStaged)) {
        value.set(value.getItems(false).map(item => (isStaged(item) ? moved(fork, item) : item)));
      }
    } else if (value !== null && value !== undefined && isStaged(Reference.unwrapReference(value))) {
      const target = moved(fork, Reference.unwrapReference(value));
      data[prop.name] = Reference.isReference(value) ? Reference.create(target) : target;
    }
  }
}

function moved(fork: SqlEntityManager, entity: object): object {
  return fork.getReference(metaOf(entity).class, entityHelper(entity).getPrimaryKey() as never);
}

/** The shard of a new entity, by the hand-written shard chooser or the entity's `shardBy` declaration. */
export function chooseShard(scope: ShardScope, entity: object, meta: EntityMetadata): MaybePromise<ShardId> {
  return shardOfNew(scope, entity, meta, () => labelOf(entity));
}

/** The shard must declare the entity, or the write would fail there alone, after other shards committed. */
function declares(scope: ShardScope, entityClass: EntityName<object>, entity: object, shard: ShardId): void {
  if (!shardsKnowing(scope.orm, entityClass).has(shard)) {
    checkEntityOnShard(scope, entityClass, shard, routedBy(scope, entityClass), true, () => labelOf(entity));
  }
}

/** Who routes a new entity of this type: its bind, the pinned shard, or the shard chooser. */
export function routedBy(scope: ShardScope, entityName: EntityName<object> | string): string {
  return fixedShard(scope, entityName) === undefined ? 'shardChooser' : fixedBy(scope, entityName);
}

export function forEachRelated(entity: object, visit: (target: object, prop: EntityProperty) => void): void {
  const data = entity as Dictionary;
  for (const prop of metaOf(entity).relations) {
    const value = data[prop.name];
    if (value === null || value === undefined) {
      continue;
    }
    if (prop.kind === ReferenceKind.ONE_TO_MANY || prop.kind === ReferenceKind.MANY_TO_MANY) {
      if (value instanceof Collection && value.isInitialized()) {
        for (const item of value.getItems(false)) {
          visit(item, prop);
        }
      }
    } else if (typeof value === 'object') {
      visit(Reference.unwrapReference(value), prop);
    }
  }
}

/** Not yet managed by any entity manager, nor a reference made before its shard was known. */
function isNew(entity: object): boolean {
  return managerOf(entity) === undefined;
}

/** `Book#12` for an entity with a primary key, `new Book` for one without. */
export function labelOf(entity: object): string {
  const wrapped = entityHelper(entity);
  const name = wrapped.__meta.className;
  return wrapped.hasPrimaryKey() ? `${name}#${wrapped.getSerializedPrimaryKey()}` : `new ${name}`;
}
