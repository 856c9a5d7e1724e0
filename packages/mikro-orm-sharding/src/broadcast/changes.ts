import { ChangeSetType, helper, type Dictionary, type EntityMetadata, type EntityName, type UnitOfWork } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { settleEach } from '../fleet/settle.ts';
import { rowOf } from '../mikro-internals.ts';
import { broadcastShards } from '../routing/broadcast.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { labelOf } from '../write/write-plan.ts';
import { referenceRanks } from '../write/reference-order.ts';

// What one shard's flush wrote of broadcast entities, replayed on every other shard that holds them, in the same
// transaction: rows as MikroORM wrote them (after `onCreate`, `onUpdate`, version increments and database defaults).

/** One row a flush inserted, updated or deleted on its shard, to be written the same way on the others. */
export interface BroadcastChange {
  readonly type: 'insert' | 'update' | 'delete';
  readonly meta: EntityMetadata;
  /** The shard whose flush wrote it. */
  readonly home: ShardId;
  /** `Country#PT`, for messages. */
  readonly label: string;
  /** The root entity and primary key, to tell two changes of one row apart from changes of two rows. */
  readonly identity: string;
  /** The primary key, in database format (insert: unused). */
  readonly where: unknown;
  /** Insert: the whole row; update: the changed columns; both by property, in database format. */
  readonly row: Dictionary | undefined;
}

/** Whether a flush's change sets (seen at `onFlush`) write any broadcast entity. */
export function writesBroadcast(orm: ShardedMikroORM, uow: UnitOfWork): boolean {
  for (const changeSet of uow.getChangeSets()) {
    if (orm.shardKeys.isBroadcast(changeSet.meta)) {
      return true;
    }
  }
  return false;
}

/** The broadcast rows a flush wrote, read at `afterFlush`, when the entities hold what was written. */
export function broadcastChangesOf(orm: ShardedMikroORM, em: SqlEntityManager, uow: UnitOfWork, home: ShardId): BroadcastChange[] {
  const changes: BroadcastChange[] = [];
  for (const changeSet of uow.getChangeSets()) {
    const meta = changeSet.meta as EntityMetadata;
    if (!orm.shardKeys.isBroadcast(meta)) {
      continue;
    }
    const entity = changeSet.entity as object;
    const wrapped = helper(entity);
    const identity = `${meta.root.className}#${wrapped.getSerializedPrimaryKey()}`;
    const label = labelOf(entity);
    if (changeSet.type === ChangeSetType.CREATE) {
      changes.push({ type: 'insert', meta, home, label, identity, where: undefined, row: rowOf(em, entity) });
    } else if (changeSet.type === ChangeSetType.DELETE || changeSet.type === ChangeSetType.DELETE_EARLY) {
      changes.push({ type: 'delete', meta, home, label, identity, where: wrapped.getPrimaryKey(true), row: undefined });
    } else {
      const row: Dictionary = { ...(changeSet.payload as Dictionary) };
      if (meta.versionProperty !== undefined) {
        row[meta.versionProperty] = (entity as Dictionary)[meta.versionProperty];
      }
      changes.push({ type: 'update', meta, home, label, identity, where: wrapped.getPrimaryKey(true), row });
    }
  }
  return changes;
}

/**
 * Refuses changes of one broadcast row made on two shards in one flush (two copies of it were loaded, one from each,
 * and both changed): the shards would end up disagreeing. Thrown before anything is replayed; the flush rolls back.
 */
export function checkOneHome(changes: readonly BroadcastChange[]): void {
  const homes = new Map<string, ShardId>();
  for (const change of changes) {
    const other = homes.get(change.identity);
    if (other !== undefined && other !== change.home) {
      throw ShardingError.unsupported(
        `Changing ${change.label} on shards "${other}" and "${change.home}" in one flush`,
        `this entity manager holds two copies of that broadcast row (loaded from each shard); change one of them. Nothing was written`,
      );
    }
    homes.set(change.identity, change.home);
  }
}

/** The shards a change must be replayed on: every writable shard holding the entity but its home. */
function targetsOf(orm: ShardedMikroORM, change: BroadcastChange): readonly ShardId[] {
  return broadcastShards(orm, change.meta.class as EntityName<object>).filter(shard => shard !== change.home);
}

/**
 * Replays the changes on every other shard holding the entity (shards at once; on each, inserts and updates parents
 * first, then deletes children first). `enlist` makes a shard's fork ready in the flush's transaction.
 */
export async function replicate(
  orm: ShardedMikroORM,
  changes: readonly BroadcastChange[],
  enlist: (shard: ShardId) => Promise<SqlEntityManager>,
): Promise<void> {
  const order = orderOf(orm);
  const rank = (change: BroadcastChange) => order.get(change.meta.root.className) ?? 0;
  const sorted = [
    ...changes.filter(change => change.type !== 'delete').sort((a, b) => rank(a) - rank(b)),
    ...changes.filter(change => change.type === 'delete').sort((a, b) => rank(b) - rank(a)),
  ];
  const byShard = new Map<ShardId, BroadcastChange[]>();
  for (const change of sorted) {
    for (const shard of targetsOf(orm, change)) {
      byShard.set(shard, [...(byShard.get(shard) ?? []), change]);
    }
  }
  await settleEach('flush', [...byShard.keys()], async shard => {
    const fork = await enlist(shard);
    await replay(fork, byShard.get(shard)!);
  });
}

/** Writes changes on one shard's fork, consecutive inserts of one entity as one statement. */
async function replay(fork: SqlEntityManager, changes: readonly BroadcastChange[]): Promise<void> {
  for (let i = 0; i < changes.length;) {
    const change = changes[i]!;
    const name = change.meta.class as EntityName<object>;
    if (change.type === 'insert') {
      let end = i + 1;
      while (end < changes.length && changes[end]!.type === 'insert' && changes[end]!.meta === change.meta) {
        end++;
      }
      await fork.insertMany(name, changes.slice(i, end).map(insert => insert.row!) as never, { convertCustomTypes: false });
      i = end;
      continue;
    }
    if (change.type === 'update') {
      // Database values, as MikroORM's unit of work writes them (`convertCustomTypes: false`, which `nativeUpdate` passes on).
      await fork.nativeUpdate(name, change.where as never, change.row as never, { filters: false, convertCustomTypes: false } as never);
    } else {
      await fork.nativeDelete(name, change.where as never, { filters: false, convertCustomTypes: false } as never);
    }
    i++;
  }
}

const orders = new WeakMap<ShardedMikroORM, ReadonlyMap<string, number>>();

/** The broadcast entities, parents first (see {@link referenceRanks}), computed once per fleet. */
function orderOf(orm: ShardedMikroORM): ReadonlyMap<string, number> {
  let order = orders.get(orm);
  if (!order) {
    const metas = [...orm.shardKeys.broadcast].flatMap(name => {
      const meta = metaByName(orm, name);
      return meta === undefined ? [] : [meta];
    });
    order = referenceRanks(metas);
    orders.set(orm, order);
  }
  return order;
}

function metaByName(orm: ShardedMikroORM, name: string): EntityMetadata | undefined {
  for (const id of orm.shardIds) {
    const meta = orm.fleet.metadata(id).getByClassName(name, false);
    if (meta) {
      return meta as EntityMetadata;
    }
  }
  return undefined;
}
