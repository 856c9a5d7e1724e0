import { Reference, wrap, type Dictionary, type EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { adoptEntity, managerOf, metaOf, originalDataOf, releaseEntity, restoreOriginalData } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import { explicitShard, rememberShard } from '../write/shard-of.ts';
import { isToOne } from '../write/reference-order.ts';
import type { ShardId } from '../choosers.ts';
import type { MovePlan } from './plan.ts';
import type { MovingRow } from './rows.ts';

/** What {@link rehome} changed, to be put back if the move fails. */
export interface Rehomed {
  undo(): void;
}

/**
 * Hands every moving entity this entity manager holds to the fork of its new shard: the old fork forgets it, the new
 * one manages it with its pending changes still pending (the flush writes them there), and references it holds that
 * were never loaded become references of the new shard, so lazy loads go there. A new follower placed on the old
 * shard is persisted on the new one instead.
 */
export function rehome(scope: ShardScope, plan: MovePlan, references: readonly MovingRow[]): Rehomed {
  const undo: (() => void)[] = [];
  const entries: [object, ShardId, ShardId][] = [...plan.targets].map(([entity, to]) => [entity, plan.sources.get(entity)!, to]);
  references.forEach(row => entries.push([row.reference!, row.from, row.to]));
  try {
    for (const [entity, source, to] of entries) {
      const from = scope.forks.get(source)!;
      const into = scope.fork(to);
      const remembered = explicitShard(entity);
      if (remembered !== undefined) {
        rememberShard(entity, to);
        undo.push(() => rememberShard(entity, remembered));
      }
      if (plan.fresh.has(entity)) {
        releaseEntity(from, entity);
        into.persist(entity);
        undo.push(() => {
          releaseEntity(into, entity);
          from.persist(entity);
        });
        continue;
      }
      const manager = managerOf(entity)!;
      const schema = wrap(entity).getSchema();
      // The flush writes its changes on the new shard; should the move fail after that, they are pending again.
      const original = originalDataOf(entity);
      const version = metaOf(entity).versionProperty;
      const versionValue = version === undefined ? undefined : (entity as Dictionary)[version];
      releaseEntity(from, entity);
      const references = rehomeReferences(entity, into);
      if (schema !== undefined && schema === from.config.get('schema')) {
        wrap(entity).setSchema(into.config.get('schema'));
      }
      adoptEntity(into, entity);
      undo.push(() => {
        releaseEntity(into, entity);
        references.forEach(([name, value]) => ((entity as Dictionary)[name] = value));
        wrap(entity).setSchema(schema);
        restoreOriginalData(entity, original);
        if (version !== undefined) {
          (entity as Dictionary)[version] = versionValue;
        }
        adoptEntity(from, entity, manager);
      });
    }
  } catch (error) {
    undo.reverse().forEach(step => step());
    throw error;
  }
  return { undo: () => undo.reverse().forEach(step => step()) };
}

/** Replaces never-loaded references of other forks by the new fork's own; returns what they were. */
function rehomeReferences(entity: object, into: SqlEntityManager): [string, unknown][] {
  const replaced: [string, unknown][] = [];
  const data = entity as Dictionary;
  for (const prop of metaOf(entity).relations) {
    const value = data[prop.name];
    if (!isToOne(prop) || value === null || value === undefined) {
      continue;
    }
    const target = Reference.unwrapReference(value as object);
    const owner: EntityManager | undefined = managerOf(target);
    if (owner === undefined || owner === into || wrap(target).isInitialized()) {
      continue;
    }
    const moved = into.getReference(metaOf(target).class, wrap(target, true).getPrimaryKey() as never);
    replaced.push([prop.name, value]);
    data[prop.name] = Reference.isReference(value) ? Reference.create(moved) : moved;
  }
  return replaced;
}
