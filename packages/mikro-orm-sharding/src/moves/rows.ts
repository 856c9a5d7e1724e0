import {
  FlushMode,
  helper,
  LockMode,
  Reference,
  ReferenceKind,
  wrap,
  type Dictionary,
  type EntityMetadata,
  type EntityName,
  type FindOptions,
} from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { ShardScope } from '../scope.ts';
import { metaOf } from '../mikro-internals.ts';
import { chunksOf, keysCondition } from '../write/keys.ts';
import type { MovePlan } from './plan.ts';

// The rows a move copies, read on the shard they leave, inside the move's transaction and locked there (FOR UPDATE):
// what the entity manager holds, and every row that follows it through `{ parent }`, loaded or not.

/** One row that moves. */
export interface MovingRow {
  /** The source shard's metadata of its entity. */
  readonly meta: EntityMetadata;
  /** `Book#12`: root entity and serialized primary key, which identifies a row whatever its class. */
  readonly key: string;
  readonly pk: unknown;
  readonly from: ShardId;
  readonly to: ShardId;
  /** The entity this entity manager holds, when it is loaded (initialized): its pending changes are flushed on the new shard. */
  readonly entity: object | undefined;
  /** A reference (never loaded) to it this entity manager holds, found by the move: it goes to the new shard's fork. */
  readonly reference: object | undefined;
  /** The row as the source shard holds it (an entity of the reading fork); undefined when it is gone. */
  stored: object | undefined;
}

/** `Book#12` for an entity of any fork. */
export function rowKey(entity: object): string {
  const wrapped = helper(entity);
  return `${wrapped.__meta.root.className}#${wrapped.getSerializedPrimaryKey()}`;
}

/** A fork of a shard's fork in the same transaction, with an identity map of its own, that never flushes. */
export function readerOf(fork: SqlEntityManager): SqlEntityManager {
  return fork.fork({ clear: true, keepTransactionContext: true, flushMode: FlushMode.COMMIT }) as SqlEntityManager;
}

/** Every row, every column (lazy ones too), whatever the filters say, locked until the move's transaction ends. */
function readOptions(meta: EntityMetadata, lock: boolean): FindOptions<object, string> {
  const lazy = meta.props.filter(prop => prop.lazy && prop.kind === ReferenceKind.SCALAR).map(prop => prop.name);
  return {
    filters: false,
    ...(lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {}),
    ...(lazy.length > 0 ? { populate: lazy as never } : {}),
  };
}

/**
 * Reads the rows that leave one shard: those of the entities the plan holds there, and every row that follows them
 * (queried by parent, level after level), except a follower whose loaded entity now points at a parent that stays.
 */
export async function readMovingRows(scope: ShardScope, plan: MovePlan, from: ShardId, reader: SqlEntityManager, rows: Map<string, MovingRow>): Promise<void> {
  const held = scope.forks.get(from)!;
  let frontier: MovingRow[] = [];
  for (const [entity, to] of plan.targets) {
    if (plan.sources.get(entity) === from && !plan.fresh.has(entity)) {
      // A reference never loaded holds nothing of its own: the stored row is all there is to copy.
      const loaded = wrap(entity).isInitialized() ? entity : undefined;
      const row: MovingRow = {
        meta: metaOf(entity),
        key: rowKey(entity),
        pk: helper(entity).getPrimaryKey(),
        from,
        to,
        entity: loaded,
        reference: undefined,
        stored: undefined,
      };
      rows.set(row.key, row);
      frontier.push(row);
    }
  }
  while (frontier.length > 0) {
    const next: MovingRow[] = [];
    for (const [name, parents] of byClassName(frontier)) {
      for (const route of scope.orm.shardKeys.followersOf(name)) {
        const meta = reader.getMetadata().get(route.meta.class);
        const parentsByKey = new Map(parents.map(row => [row.key, row]));
        for (const chunk of chunksOf(parents.map(row => row.pk))) {
          const found = await reader.find(meta.class as EntityName<object>, { [route.property]: { $in: chunk } } as never, readOptions(meta, true));
          for (const stored of found) {
            const key = rowKey(stored);
            const known = rows.get(key);
            if (known !== undefined) {
              known.stored ??= stored;
              continue;
            }
            const mine = held.getUnitOfWork(false).getIdentityMap().getByEntity(stored);
            if (mine !== undefined && wrap(mine).isInitialized()) {
              // Loaded, and no longer pointing at a moving parent (else the plan would hold it): it stays.
              continue;
            }
            const parent = parentsByKey.get(rowKey(Reference.unwrapReference((stored as Dictionary)[route.property] as object)));
            if (parent === undefined) {
              continue;
            }
            // A reference this entity manager holds, never loaded, moves with its row (to the new shard's fork).
            const row: MovingRow = {
              meta: metaOf(stored),
              key,
              pk: helper(stored).getPrimaryKey(),
              from,
              to: parent.to,
              entity: undefined,
              reference: mine,
              stored,
            };
            rows.set(key, row);
            next.push(row);
          }
        }
      }
    }
    frontier = next;
  }
  const unread = [...rows.values()].filter(row => row.from === from && row.stored === undefined);
  for (const [, group] of byClass(unread)) {
    const meta = reader.getMetadata().get(group[0]!.meta.class);
    for (const chunk of chunksOf(group)) {
      const found = await reader.find(
        meta.class as EntityName<object>,
        keysCondition(
          meta,
          chunk.map(row => row.pk),
        ) as never,
        readOptions(meta, true),
      );
      for (const stored of found) {
        const row = rows.get(rowKey(stored));
        if (row !== undefined) {
          row.stored = stored;
        }
      }
    }
  }
}

/** Rows grouped by their entity's declared name (followers are declared by it). */
function byClassName(rows: readonly MovingRow[]): Map<string, MovingRow[]> {
  const groups = new Map<string, MovingRow[]>();
  for (const row of rows) {
    for (const name of new Set([row.meta.className, row.meta.root.className])) {
      groups.set(name, [...(groups.get(name) ?? []), row]);
    }
  }
  return groups;
}

/** Rows grouped by their entity class. */
export function byClass(rows: Iterable<MovingRow>): Map<EntityName<object>, MovingRow[]> {
  const groups = new Map<EntityName<object>, MovingRow[]>();
  for (const row of rows) {
    const group = groups.get(row.meta.class);
    if (group) {
      group.push(row);
    } else {
      groups.set(row.meta.class, [row]);
    }
  }
  return groups;
}
