import { Utils, type Dictionary, type EntityMetadata, type FilterQuery, type FindOptions } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { compiledQuery } from './compile.ts';
import { runCompiled } from './execute.ts';
import { comparatorOf, mergeSorted, pagePositions, type SortKey } from './merge.ts';
import { orderTerms, rowSortKeys, type KeyDialect } from './order-by.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { settleEach } from '../fleet/settle.ts';
import { readOn } from '../routing/read-your-writes.ts';
import { dialectOf, materialize, runOnShards } from './shard-rows.ts';

/** From this offset on, a page is first located on sort keys alone (measured: at offset 5000 it is 3-4x faster). */
export const DEEP_OFFSET = 1000;

/**
 * A deep page (`offset` >= {@link DEEP_OFFSET}) over several shards, in two passes. Every shard still has to offer
 * its first `offset + limit` rows, but the first pass reads only their sort keys, as arrays: enough to find where
 * the page lies in each shard. The second pass reads each shard's own rows of the page, whole, with that shard's
 * `offset` and `limit`. The primary key ends the order so that both passes see each shard's rows alike.
 */
export async function findDeepPage<T extends object>(
  scope: ShardScope,
  meta: EntityMetadata<T>,
  where: FilterQuery<T>,
  orderBy: unknown,
  keyDialect: KeyDialect,
  options: FindOptions<any, any, any, any> & { offset: number; limit: number },
  shards: readonly ShardId[],
): Promise<T[] | undefined> {
  const given = orderTerms(orderBy, meta.className)!;
  // Ties run the way the last key runs: an index on that key then still serves the whole order (SQLite keeps equal
  // keys in rowid order, so `score desc, id desc` is one backward index scan while `score desc, id asc` is a sort).
  const direction = given[given.length - 1]?.direction === -1 ? 'desc' : 'asc';
  const ties = meta.primaryKeys.filter(pk => !given.some(term => term.path.length === 1 && term.path[0] === pk)).map(pk => ({ [pk]: direction }));
  const total = [...Utils.asArray(orderBy as object), ...ties];
  const terms = orderTerms(total, meta.className)!;
  const rowKeys = rowSortKeys(meta, terms, keyDialect);
  if (!rowKeys) {
    return undefined;
  }
  const { offset, limit } = options;
  // Only the given keys are compared; rows equal on them keep shard order, then each shard's primary-key order,
  // in both passes alike. So the primary key need not be read, and one given key is read as a bare column.
  const keys = rowKeys.slice(0, given.length);
  if (keyDialect.roundsBigints && keys.some(key => key.kind === 'bigint')) {
    // Bare key values would skip the check that refuses bigints the driver reads rounded: the ordinary path makes it.
    return undefined;
  }
  const fields = terms.slice(0, given.length).map(term => term.path[0]!);
  const single = fields.length === 1;
  const valueKeys: SortKey<unknown>[] = keys.map((key, i) => ({ ...key, read: single ? row => row : row => (row as unknown[])[i] }));
  const keyLists = await runOnShards<unknown[]>(
    scope,
    'find',
    meta.class,
    shards,
    options,
    (fork, compiled, shard) => runCompiled(fork, compiled, single ? 'column' : 'values', readOn(scope, shard, meta.class, options)) as Promise<unknown[]>,
    (fork, dialect) => compiledQuery(fork, meta, 'select', { where, orderBy: total, fields, limit: offset + limit }, dialect),
  );
  const { skip, take } = pagePositions(keyLists, comparatorOf(valueKeys), offset, limit);
  const pageShards = shards.filter((_, i) => take[i]! > 0);
  const lists = await settleEach('find', pageShards, shard =>
    onReadyFork(scope, shard, fork => {
      const i = shards.indexOf(shard);
      const compiled = compiledQuery(fork, meta, 'select', { where, orderBy: total, limit: take[i], offset: skip[i] }, dialectOf(fork));
      return runCompiled(fork, compiled, 'all', readOn(scope, shard, meta.class, options)) as Promise<Dictionary[]>;
    }),
  );
  return materialize(scope, meta.class, meta, mergeSorted(lists, comparatorOf(keys), 0, limit), pageShards, options, where);
}
