/**
 * `mikro-orm-sharding/merge`: the merge functions the library uses, for merging results of your own per-shard
 * queries (raw SQL, query builders) the way the sharded entity manager merges its own.
 */
export {
  comparatorOf,
  compareValues,
  concatPage,
  mergeSorted,
  pagePositions,
  sumCounts,
  type Merged,
  type PagePositions,
  type SortKey,
  type ValueKind,
} from './read/merge.ts';
