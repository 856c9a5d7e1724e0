import { Utils, type EntityMetadata, type Platform } from '@mikro-orm/core';
import { mergeOrderBy } from '../mikro-internals.ts';
import { ShardingError } from '../errors/errors.ts';
import { orderTerms, termProps, type OrderTerm } from './order-by.ts';
import { pageWindow, type PageWindow } from './page-window.ts';

/** How the pages of several shards merge into one answer. */
export interface MergePlan {
  /** The query's `orderBy`, with the entity's default order appended as MikroORM does. */
  readonly orderBy: unknown;
  readonly terms: readonly OrderTerm[];
  readonly window: PageWindow;
}

/**
 * The merge of a query over several shards. Throws `UNMERGEABLE_QUERY` for what no merge can answer exactly; returns
 * undefined for what MikroORM (or the database) refuses on one database, an unknown order key or direction, a
 * `limit: 'abc'`: the caller then lets one shard's MikroORM refuse it, so the error is MikroORM's own.
 */
export function mergePlan(
  meta: EntityMetadata,
  options: { orderBy?: unknown; offset?: unknown; limit?: unknown; groupBy?: unknown; having?: unknown },
  platform: Platform,
): MergePlan | undefined {
  refuseGrouping(meta, options);
  const orderBy = meta.orderBy ? mergeOrderBy(options.orderBy, meta.orderBy) : options.orderBy;
  const terms = orderTerms(orderBy, meta.className);
  if (!terms || terms.some(term => !termProps(meta, term))) {
    return undefined;
  }
  const window = pageWindow(options.offset, options.limit, platform);
  return window ? { orderBy, terms, window } : undefined;
}

/**
 * `groupBy` and `having` group rows within each shard: a group whose rows lie on several shards would come back once
 * per shard, with each shard's partial aggregate. No merge of the pages can tell, so such queries are refused.
 */
export function refuseGrouping(meta: EntityMetadata, options: { groupBy?: unknown; having?: unknown }): void {
  const grouped = options.groupBy !== undefined && options.groupBy !== null && Utils.asArray(options.groupBy).length > 0;
  const having =
    options.having !== undefined &&
    options.having !== null &&
    (typeof options.having !== 'object' || !Utils.isEmpty(options.having) || Object.getOwnPropertySymbols(options.having).length > 0);
  if (grouped || having) {
    throw ShardingError.unmergeableQuery(
      meta.className,
      `\`${grouped ? 'groupBy' : 'having'}\` groups rows within each shard, so a group spread over several shards would come back once per shard with partial aggregates.`,
      grouped ? options.groupBy : options.having,
    );
  }
}
