import { helper, Reference, ReferenceKind, Utils, type Dictionary, type EntityMetadata, type EntityName, type EntityProperty } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { managerOf } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import { isToOne } from '../write/reference-order.ts';
import { chunksOf } from '../write/keys.ts';
import { byClass, rowKey, type MovingRow } from './rows.ts';

// What a move must not split: a foreign key or a join-table row between a row that moves and one that stays (on
// the old shard it would dangle, on the new one point at nothing). Broadcast rows are on every shard; rows that move
// together to the same shard stay together. All checked before anything is written.

/** One join-table row to copy to the new shard: an entity of the reading fork. */
export interface PivotCopy {
  readonly meta: EntityMetadata;
  readonly to: ShardId;
  readonly stored: object;
}

/** Join-table rows to delete on the old shard: those whose `side` is one of `pks`. */
export interface PivotDelete {
  readonly meta: EntityMetadata;
  readonly side: string;
  readonly pks: readonly unknown[];
}

/**
 * The to-one references a moving row will hold on its new shard (the loaded entity's own, when it is loaded and
 * points at a row that exists; else the stored ones): each must be null, broadcast, or a row that moves there too.
 */
export function checkOutgoing(scope: ShardScope, rows: ReadonlyMap<string, MovingRow>): void {
  for (const row of rows.values()) {
    if (row.stored === undefined) {
      continue;
    }
    for (const prop of row.meta.relations) {
      if (!isToOne(prop)) {
        continue;
      }
      const target = targetOf(row, prop);
      if (target === undefined || isBroadcastMeta(scope, prop.targetMeta!)) {
        continue;
      }
      // A row that moves there too, or one that is there (a new parent on the new shard).
      const other = rows.get(rowKey(target));
      if (other === undefined ? scope.shardOf(target) !== row.to : other.to !== row.to) {
        throw ShardingError.moveSplitsReference(labelOfRow(row), row.from, row.to, labelOfEntity(target), prop.name, false);
      }
    }
  }
}

/**
 * The row a moving row's relation will point at once copied: the loaded entity's own reference (none when it holds
 * none), unless that is a new entity, written by the flush only later: then the stored one. Undefined for none.
 */
export function targetOf(row: MovingRow, prop: EntityProperty): object | undefined {
  if (row.entity !== undefined) {
    const own = (row.entity as Dictionary)[prop.name];
    if (own === null || own === undefined) {
      return undefined;
    }
    const target = Reference.unwrapReference(own as object);
    if (!isNew(target)) {
      return target;
    }
  }
  const stored = (row.stored as Dictionary)[prop.name];
  return stored === null || stored === undefined ? undefined : Reference.unwrapReference(stored as object);
}

/** Whether the loaded entity's own reference is what the copy holds (it exists, or is none), rather than the stored one. */
export function ownReference(row: MovingRow, prop: EntityProperty): boolean {
  const own = (row.entity as Dictionary | undefined)?.[prop.name];
  return row.entity !== undefined && (own === null || own === undefined || !isNew(Reference.unwrapReference(own as object)));
}

function isNew(entity: object): boolean {
  return managerOf(entity) === undefined || !helper(entity).hasPrimaryKey();
}

/**
 * Rows of other entities on the old shard that reference moving rows and do not move with them. Loaded entities are
 * judged by what they hold now (the flush checks those, and writes their changes before the old rows go).
 */
export async function checkIncoming(scope: ShardScope, rows: ReadonlyMap<string, MovingRow>, from: ShardId, probe: SqlEntityManager): Promise<void> {
  const held = scope.forks.get(from)!;
  const moving = [...rows.values()].filter(row => row.from === from && row.stored !== undefined);
  const metadata = probe.getMetadata();
  for (const [, group] of byRoot(moving)) {
    const root = group[0]!.meta.root;
    for (const referrer of metadata.getAll().values()) {
      if (
        referrer.embeddable ||
        referrer.virtual ||
        (referrer.abstract && !referrer.discriminatorColumn) ||
        referrer.pivotTable ||
        isBroadcastMeta(scope, referrer)
      ) {
        continue;
      }
      const follows = scope.orm.shardKeys.of(referrer);
      for (const prop of referrer.relations) {
        if (!isToOne(prop) || prop.targetMeta?.root.className !== root.className || follows?.property === prop.name) {
          continue;
        }
        for (const chunk of chunksOf(group)) {
          const found = await probe.find(referrer.class as EntityName<object>, { [prop.name]: { $in: chunk.map(row => row.pk) } } as never, {
            filters: false,
            fields: [...referrer.primaryKeys, prop.name] as never,
          });
          for (const stays of found) {
            if (rows.has(rowKey(stays)) || held.getUnitOfWork(false).getIdentityMap().getByEntity(stays) !== undefined) {
              continue;
            }
            const target = rows.get(rowKey(Reference.unwrapReference((stays as Dictionary)[prop.name] as object)))!;
            throw ShardingError.moveSplitsReference(labelOfRow(target), from, target.to, labelOfEntity(stays), prop.name, true);
          }
        }
      }
    }
  }
}

/**
 * The join-table rows of the moving rows' many-to-many relations (either side): each other side must be broadcast or
 * move to the same shard. Resolves to the rows to copy, and what to delete on the old shard.
 */
export async function pivotRows(
  scope: ShardScope,
  rows: ReadonlyMap<string, MovingRow>,
  from: ShardId,
  probe: SqlEntityManager,
): Promise<{ copies: PivotCopy[]; deletes: PivotDelete[] }> {
  const copies = new Map<string, PivotCopy>();
  const deletes: PivotDelete[] = [];
  const moving = [...rows.values()].filter(row => row.from === from && row.stored !== undefined);
  const metadata = probe.getMetadata();
  for (const [, group] of byClass(moving)) {
    const meta = group[0]!.meta;
    for (const prop of meta.relations) {
      if (prop.kind !== ReferenceKind.MANY_TO_MANY) {
        continue;
      }
      const owning = prop.owner ? prop : prop.targetMeta!.properties[prop.mappedBy as never]!;
      const pivot = metadata.find(owning.pivotEntity);
      if (!pivot) {
        continue;
      }
      const columns = prop.owner ? owning.joinColumns : owning.inverseJoinColumns;
      const side = pivot.relations.find(relation => Utils.equals(relation.fieldNames, columns));
      const other = pivot.relations.find(relation => relation !== side);
      if (side === undefined || other === undefined) {
        continue;
      }
      const pks = group.map(row => row.pk);
      deletes.push({ meta: pivot, side: side.name, pks });
      const broadcast = isBroadcastMeta(scope, other.targetMeta!);
      for (const chunk of chunksOf(pks)) {
        const found = await probe.find(pivot.class as EntityName<object>, { [side.name]: { $in: chunk } } as never, { filters: false });
        for (const stored of found) {
          const mine = rows.get(rowKey(Reference.unwrapReference((stored as Dictionary)[side.name] as object)))!;
          const otherEnd = Reference.unwrapReference((stored as Dictionary)[other.name] as object);
          const together = rows.get(rowKey(otherEnd));
          if (!broadcast && together?.to !== mine.to) {
            throw ShardingError.moveSplitsReference(labelOfRow(mine), from, mine.to, labelOfEntity(otherEnd), prop.name, false);
          }
          copies.set(rowKey(stored), { meta: pivot, to: mine.to, stored });
        }
      }
    }
  }
  return { copies: [...copies.values()], deletes };
}

function byRoot(rows: readonly MovingRow[]): Map<string, MovingRow[]> {
  const groups = new Map<string, MovingRow[]>();
  for (const row of rows) {
    groups.set(row.meta.root.className, [...(groups.get(row.meta.root.className) ?? []), row]);
  }
  return groups;
}

function isBroadcastMeta(scope: ShardScope, meta: EntityMetadata): boolean {
  return scope.orm.shardKeys.hasBroadcast && scope.orm.shardKeys.isBroadcast(meta);
}

function labelOfRow(row: MovingRow): string {
  return `${row.meta.className}#${row.key.slice(row.key.indexOf('#') + 1)}`;
}

function labelOfEntity(entity: object): string {
  const wrapped = helper(entity);
  return `${wrapped.__meta.className}#${wrapped.getSerializedPrimaryKey()}`;
}
