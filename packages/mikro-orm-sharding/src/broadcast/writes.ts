import { Utils, type EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { settleEach } from '../fleet/settle.ts';
import { onShard } from '../errors/shard-failure.ts';
import { rowOf } from '../mikro-internals.ts';
import { broadcastReadShard, broadcastShards } from '../routing/broadcast.ts';
import { markWritten } from '../routing/read-your-writes.ts';
import type { ShardScope } from '../scope.ts';
import { ShardTransaction } from '../transactions/transaction.ts';

// Writes of broadcast entities that bypass the unit of work (`nativeUpdate`, `nativeDelete`, `insert`, `upsert` and
// their `Many` forms): the same statement on every writable shard that holds the entity, in one transaction: the
// entity manager's, or one of the fleet's mode (`multi`, or `twopc`, so that all shards agree).

/**
 * Runs `write` on every writable shard holding a broadcast entity, in the entity manager's transaction or one of its
 * own. `first` runs alone before the others: its answer is the one returned (one database's answer).
 */
export async function writeOnEveryShard<T>(
  scope: ShardScope,
  operation: string,
  entityName: EntityName<object>,
  write: (fork: SqlEntityManager, first: boolean) => Promise<T>,
): Promise<T> {
  const home = broadcastReadShard(scope, entityName);
  const shards = broadcastShards(scope.orm, entityName);
  const others = shards.filter(shard => shard !== home);
  const own = scope.transaction === undefined ? new ShardTransaction(scope, { mode: scope.orm.transactionConfig.mode, operation }) : undefined;
  const transaction = scope.transaction ?? own!;
  const enlist = async (shard: ShardId) => {
    const ready = transaction.ready(shard);
    if (ready) {
      await ready;
    }
    return scope.fork(shard);
  };
  try {
    const answer = await onShard(
      operation,
      home,
      enlist(home).then(fork => write(fork, true)),
    );
    await settleEach(operation, others, shard => enlist(shard).then(fork => write(fork, false)));
    await own?.commit();
    markWritten(scope, [home, ...others]);
    return answer;
  } catch (error) {
    await own?.rollback().catch(() => undefined);
    throw error;
  }
}

/** `insert`/`insertMany` of a broadcast entity: the rows on every shard; resolves to their primary keys. */
export function insertEverywhere(scope: ShardScope, entityName: EntityName<object>, rows: readonly object[], options: object): Promise<unknown[]> {
  return writeOnEveryShard(scope, rows.length === 1 ? 'insert' : 'insertMany', entityName, async (fork, first) => {
    if (!first && Utils.isEntity(rows[0])) {
      // The first insert gave the entities what the database filled in; the others write the rows as they are now.
      const data = rows.map(row => rowOf(fork, row));
      await fork.insertMany(entityName, data as never, { ...options, convertCustomTypes: false });
      return [];
    }
    return rows.length === 1 ? [await fork.insert(entityName, rows[0] as never, options)] : fork.insertMany(entityName, rows as never, options);
  });
}

/**
 * `upsert`/`upsertMany` of a broadcast entity: upserted on every shard; resolves to the entities managed by the fork
 * of one shard (this entity manager's, as a read would pick), the others' copies are not kept.
 */
export function upsertEverywhere(scope: ShardScope, entityName: EntityName<object>, rows: readonly object[], options: object, one: boolean): Promise<object[]> {
  return writeOnEveryShard(scope, one ? 'upsert' : 'upsertMany', entityName, async (fork, first) => {
    if (first) {
      return one ? [await fork.upsert(entityName, rows[0] as never, options)] : fork.upsertMany(entityName, rows as never, options);
    }
    const data = Utils.isEntity(rows[0]) ? rows.map(row => rowOf(fork, row)) : rows;
    const copy = { ...options, disableIdentityMap: true, ...(Utils.isEntity(rows[0]) ? { convertCustomTypes: false } : {}) };
    await fork.upsertMany(entityName, data as never, copy);
    return [];
  });
}
