import { wrap, type EntityMetadata, type EntityName, type IDatabaseDriver } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { onShard } from '../errors/shard-failure.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import { rowOf } from '../mikro-internals.ts';
import { keysCondition } from '../write/keys.ts';
import { isReadOnly } from '../routing/read-only.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { referenceRanks } from '../write/reference-order.ts';

/** Options of {@link copyBroadcastRows}. */
export interface CopyBroadcastRowsOptions<Id extends string = ShardId> {
  /**
   * The shard to copy from.
   * @default for each broadcast entity, the first other shard that holds it (writable shards first)
   */
  readonly from?: Id;
  /**
   * Rows read, and written, per statement.
   * @default 500
   */
  readonly batchSize?: number;
}

/**
 * Gives a shard the rows of every broadcast entity (`shardBy: { Country: { broadcast: true } }`) it lacks, copied
 * from another shard: for a shard added to the fleet, or restored, before it serves. Rows are matched by primary key:
 * a row the shard has already is left as it is. Parents come before the rows that reference them, and the shard's
 * writes are one transaction, so the shard gets all of them or none. Resolves to the rows copied, by entity name.
 *
 * @example
 * ```ts
 * const copied = await copyBroadcastRows(orm, 's4'); // { Country: 249, Currency: 180 }
 * ```
 */
export async function copyBroadcastRows<D extends IDatabaseDriver, Id extends string>(
  orm: ShardedMikroORM<D, Id>,
  shard: NoInfer<Id>,
  options: CopyBroadcastRowsOptions<NoInfer<Id>> = {},
): Promise<Record<string, number>> {
  const fleet = orm as unknown as ShardedMikroORM;
  const { from, batchSize = 500 } = options;
  for (const id of [shard, from]) {
    if (id !== undefined && !fleet.fleet.has(id)) {
      throw ShardingError.unknownShard(id, fleet.shardIds, { source: 'copyBroadcastRows()' });
    }
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw ShardingError.invalidOptions(`copyBroadcastRows() takes a \`batchSize\` that is a positive integer; got ${describe(batchSize)}.`, batchSize);
  }
  if (isReadOnly(fleet.fleet, shard)) {
    throw ShardingError.readOnlyShard('copy broadcast rows to', 'its broadcast entities', shard, 'copyBroadcastRows()');
  }
  const target = fleet.shard(shard).em.fork() as SqlEntityManager;
  const metas = [...fleet.shardKeys.broadcast].flatMap(name => {
    const meta = target.getMetadata().getByClassName(name, false);
    return meta === undefined ? [] : [meta as EntityMetadata];
  });
  const order = referenceRanks(metas);
  metas.sort((a, b) => (order.get(a.root.className) ?? 0) - (order.get(b.root.className) ?? 0));
  const copied: Record<string, number> = {};
  await onShard(
    'copyBroadcastRows',
    shard,
    target.transactional(async em => {
      for (const meta of metas) {
        const source = from ?? sourceOf(fleet, meta, shard);
        copied[meta.className] = source === undefined ? 0 : await copyEntity(fleet, meta, source, em as SqlEntityManager, batchSize);
      }
    }),
  );
  return copied;
}

/** The first other shard holding the entity, writable ones first (read-only shards are copies kept by someone else). */
function sourceOf(orm: ShardedMikroORM, meta: EntityMetadata, shard: ShardId): ShardId | undefined {
  const holding = [...shardsKnowing(orm, meta.class as EntityName<object>)].filter(id => id !== shard);
  return holding.find(id => !isReadOnly(orm.fleet, id)) ?? holding[0];
}

/** Copies one entity's rows the target lacks, page by page in primary-key order. */
async function copyEntity(orm: ShardedMikroORM, meta: EntityMetadata, from: ShardId, target: SqlEntityManager, batchSize: number): Promise<number> {
  const orderBy = Object.fromEntries(meta.primaryKeys.map(name => [name, 'asc']));
  let copied = 0;
  for (let offset = 0; ; offset += batchSize) {
    const source = orm.shard(from).em.fork() as SqlEntityManager;
    const rows = await onShard(
      'copyBroadcastRows',
      from,
      source.find(meta.class as EntityName<object>, {}, { filters: false, orderBy: orderBy as never, limit: batchSize, offset }),
    );
    if (rows.length === 0) {
      return copied;
    }
    const pks = rows.map(row => wrap(row, true).getPrimaryKey());
    const present = await target.find(meta.class as EntityName<object>, keysCondition(meta, pks) as never, {
      filters: false,
      fields: meta.primaryKeys as never,
    });
    const have = new Set(present.map(row => JSON.stringify(wrap(row, true).getPrimaryKey())));
    const missing = rows.filter((_, i) => !have.has(JSON.stringify(pks[i])));
    if (missing.length > 0) {
      await target.insertMany(meta.class as EntityName<object>, missing.map(row => rowOf(source, row)) as never, { convertCustomTypes: false });
      copied += missing.length;
    }
    target.clear();
    if (rows.length < batchSize) {
      return copied;
    }
  }
}
