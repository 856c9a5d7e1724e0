import { ShardingError } from './errors/errors.ts';

/** What to use instead of each part of MikroORM's entity manager that the sharded one does not offer, and why. */
const INSTEAD = {
  'createQueryBuilder()': 'a query builder runs on one database; use em.on(shard).createQueryBuilder()',
  'qb()': 'a query builder runs on one database; use em.on(shard).qb()',
  'stream()': 'use em.on(shard).stream() on each shard, or find() with limit/offset',
  'findByCursor()': 'use keyset pagination with find() (orderBy a unique key, continue after the last one), or em.on(shard).findByCursor()',
  'map()': 'which shard a raw row belongs to is not known; use em.on(shard).map()',
  'merge()': 'which shard the data belongs to is not known; use em.on(shard).merge()',
  'countBy()': 'use em.on(shard).countBy() on each shard and add the counts up',
} as const;

/** The `UNSUPPORTED_OPERATION` error of a method the sharded entity manager does not offer. */
export function notAcrossShards(method: keyof typeof INSTEAD): ShardingError {
  return ShardingError.unsupported(method, INSTEAD[method]);
}
