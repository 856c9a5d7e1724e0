import { createHash } from 'node:crypto';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { canonicalKey } from './canonical-key.ts';
import { checkShardList } from './shard-list.ts';
import type { ShardStrategy, StrategyContext } from './strategy.ts';

/** Options of {@link tableSuffix}. */
export interface TableSuffixOptions {
  /**
   * The suffix shards known at `init()` (their ids are their suffixes), checked then. Leave it out when suffixes are
   * added at run time; an answer naming no shard is refused then (`UNKNOWN_SHARD`).
   */
  readonly shards?: readonly ShardId[];
  /**
   * The suffix of a key: `[a-z0-9_]+`, which is also its shard's id.
   * @default md5Suffix: the md5 hex digest of the key's canonical text
   */
  readonly suffixOf?: (key: unknown) => string;
}

/** A table-suffix strategy: a key's shard is the shard whose tables carry the key's suffix. */
export interface TableSuffixStrategy extends ShardStrategy {
  readonly kind: 'table-suffix';
  shardFor(key: unknown, context?: StrategyContext): ShardId | undefined;
}

/**
 * The md5 hex digest (32 characters, `[0-9a-f]`) of a key's canonical text (`canonicalKey()`: `5`, `'5'` and `5n` are
 * one key), the `table_<md5>` of a table per key. Throws `INVALID_OPTIONS` for a value
 * without a canonical form (an object, `NaN`, `null`).
 */
export function md5Suffix(key: unknown): string {
  const text = canonicalKey(key);
  if (text === undefined) {
    throw ShardingError.invalidOptions(`md5Suffix() takes a string, number, bigint, boolean or Date; got ${describe(key) || 'undefined'}.`, key);
  }
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/**
 * Routes a shard key to the table-suffix shard of its suffix (see `tableSuffixShard()`): the shard id is the suffix,
 * `md5Suffix(key)` unless `suffixOf` says otherwise. Reads by key go to that one table; a query without the key reads
 * every suffix shard, merged as from one table.
 *
 * @example
 * ```ts
 * shardBy: { Photo: { key: 'albumKey', strategy: tableSuffix({ shards: suffixes }) } }
 * ```
 */
export function tableSuffix(options: TableSuffixOptions = {}): TableSuffixStrategy {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions('tableSuffix() takes an options object: tableSuffix({ shards: [...] }).', options);
  }
  const { shards, suffixOf = md5Suffix } = options;
  if (shards !== undefined) {
    checkShardList('tableSuffix()', shards);
  }
  if (typeof suffixOf !== 'function') {
    throw ShardingError.invalidOptions(`tableSuffix() needs \`suffixOf\` to be a function of the key; got ${describe(suffixOf)}.`, suffixOf);
  }
  return {
    kind: 'table-suffix',
    ...(shards === undefined ? {} : { shards }),
    shardFor(key, context) {
      if (canonicalKey(key) === undefined) {
        return undefined;
      }
      const suffix = suffixOf(key);
      if (typeof suffix !== 'string' || !/^[a-z0-9_]+$/.test(suffix)) {
        throw ShardingError.invalidTableSuffix(context?.entityName ?? 'the key', suffix, `suffixOf(${describe(key)}) must answer [a-z0-9_]+.`);
      }
      return suffix;
    },
  };
}
