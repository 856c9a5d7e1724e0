import type { ShardId } from './choosers.ts';

/** Stable machine-readable codes of {@link ShardingError}; they never change meaning. */
export type ShardingErrorCode =
  | 'INVALID_OPTIONS'
  | 'NO_SHARDS'
  | 'MISSING_CHOOSER'
  | 'UNSUPPORTED_DRIVER'
  | 'SHARD_INIT_FAILED'
  | 'UNKNOWN_SHARD'
  | 'CHOOSER_FAILED'
  | 'CHOOSER_RETURNED_NOTHING'
  | 'CROSS_SHARD_REFERENCE'
  | 'AMBIGUOUS_SHARD'
  | 'UNPLACED_ENTITY'
  | 'UNMERGEABLE_QUERY'
  | 'SHARD_OPERATION_FAILED';

/** What a {@link ShardingError} is about; every field is optional because not every error has all of them. */
export interface ShardingErrorDetails {
  /** The shard involved. */
  readonly shard?: ShardId;
  /** The entity name involved. */
  readonly entity?: string;
  /** The offending value (a shard id, a primary key, a chooser's return value). */
  readonly value?: unknown;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * The one error type this library throws for bad input and routing failures.
 * Match on `code`, which is stable; the message names the shard, entity and value, and what to do.
 */
export class ShardingError extends Error {
  readonly code: ShardingErrorCode;
  readonly shard: ShardId | undefined;
  readonly entity: string | undefined;
  readonly value: unknown;

  constructor(code: ShardingErrorCode, message: string, details: ShardingErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ShardingError';
    this.code = code;
    this.shard = details.shard;
    this.entity = details.entity;
    this.value = details.value;
  }

  static invalidOptions(message: string, value?: unknown): ShardingError {
    return new ShardingError('INVALID_OPTIONS', `Invalid sharding options: ${message}`, { value });
  }

  static noShards(): ShardingError {
    return new ShardingError('NO_SHARDS', 'No shards configured: pass `shards: { s0: { dbName: ... }, ... }` with at least one shard.');
  }

  static missingChooser(name: string): ShardingError {
    return new ShardingError('MISSING_CHOOSER', `Missing \`${name}\`: it decides which shard a new entity is written to; pass a function returning a shard id.`);
  }

  static unsupportedDriver(shard: ShardId, driver: unknown): ShardingError {
    const what = typeof driver === 'function' ? driver.name || 'an anonymous class' : String(driver);
    return new ShardingError(
      'UNSUPPORTED_DRIVER',
      `Shard "${shard}" has driver ${what}, which is not a MikroORM SQL driver. Pass \`driver\` (e.g. SqliteDriver or PostgreSqlDriver) in the shared options or in the shard's own options.`,
      { shard, value: driver },
    );
  }

  static shardInitFailed(shard: ShardId, cause: unknown): ShardingError {
    return new ShardingError('SHARD_INIT_FAILED', `Shard "${shard}" failed to initialise: ${messageOf(cause)}. No shard was left open.`, { shard, cause });
  }

  static unknownShard(value: unknown, known: readonly ShardId[], context: { entity?: string; source: string }): ShardingError {
    const about = context.entity ? ` for ${context.entity}` : '';
    return new ShardingError(
      'UNKNOWN_SHARD',
      `${context.source} returned unknown shard ${JSON.stringify(value)}${about}; known shards are ${known.map(s => `"${s}"`).join(', ')}.`,
      { entity: context.entity, value },
    );
  }

  static chooserFailed(chooser: string, entity: string, value: unknown, cause: unknown): ShardingError {
    return new ShardingError(
      'CHOOSER_FAILED',
      `${chooser} threw for ${entity} ${describe(value)}: ${messageOf(cause)}. Nothing was written or read.`,
      { entity, value, cause },
    );
  }

  static chooserReturnedNothing(chooser: string, entity: string, value: unknown): ShardingError {
    return new ShardingError(
      'CHOOSER_RETURNED_NOTHING',
      `${chooser} returned no shard for ${entity} ${describe(value)}; it must return a shard id (or a non-empty list of them).`,
      { entity, value },
    );
  }

  static crossShardReference(entity: string, shard: ShardId, property: string, target: string, targetShard: ShardId): ShardingError {
    return new ShardingError(
      'CROSS_SHARD_REFERENCE',
      `${entity} on shard "${shard}" references ${target} on shard "${targetShard}" through "${property}"; a reference cannot cross shards. ` +
        `Route ${entity} to "${targetShard}" (in shardChooser, e.g. \`em.shardOf(entity.${property})\`, or with \`{ shard: '${targetShard}' }\`). Nothing was written.`,
      { entity, shard, value: targetShard },
    );
  }

  static ambiguousShard(entity: string, id: unknown, candidates: readonly ShardId[]): ShardingError {
    return new ShardingError(
      'AMBIGUOUS_SHARD',
      `Cannot make a reference to ${entity} ${describe(id)}: idChooser names ${candidates.length} candidate shards (${candidates.join(', ')}). ` +
        `Pass \`{ shard }\`, or use findOne() which searches the candidates in order.`,
      { entity, value: id },
    );
  }

  static unplacedEntity(operation: string, entity: string): ShardingError {
    return new ShardingError('UNPLACED_ENTITY', `Cannot ${operation} ${entity}: it is new and has no shard yet. Flush it first.`, { entity });
  }

  /**
   * A query over several shards whose results cannot be merged exactly (a `groupBy`, an order through a to-many
   * collection, a raw SQL order key). Thrown before any shard is queried; one shard (`{ shard }`) takes it as is.
   */
  static unmergeableQuery(entity: string, message: string, value?: unknown): ShardingError {
    return new ShardingError(
      'UNMERGEABLE_QUERY',
      `Cannot merge ${entity} results of several shards: ${message} Query one shard with \`{ shard }\`, or see docs/limitations.md.`,
      { entity, value },
    );
  }

  static shardOperationFailed(operation: string, shard: ShardId, cause: unknown, done: readonly ShardId[] = []): ShardingError {
    const partial = done.length > 0 ? ` Shards already done: ${done.join(', ')} (see docs/limitations.md).` : '';
    return new ShardingError('SHARD_OPERATION_FAILED', `${operation} failed on shard "${shard}": ${messageOf(cause)}.${partial}`, { shard, cause });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describe(value: unknown): string {
  if (value === undefined) {
    return '';
  }
  try {
    return typeof value === 'object' && value !== null ? `(${value.constructor?.name ?? 'object'})` : JSON.stringify(value);
  } catch {
    return String(value);
  }
}
