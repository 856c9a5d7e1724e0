import type { ShardId } from '../choosers.ts';
import { redact, redactError, redactValue } from './redact.ts';

/** Stable machine-readable codes of {@link ShardingError}; they never change meaning. */
export type ShardingErrorCode =
  | 'INVALID_OPTIONS'
  | 'NO_SHARDS'
  | 'MISSING_CHOOSER'
  | 'UNSUPPORTED_DRIVER'
  | 'SHARD_INIT_FAILED'
  | 'UNKNOWN_SHARD'
  | 'DUPLICATE_SHARD'
  | 'SHARD_REMOVED'
  | 'CHOOSER_FAILED'
  | 'CHOOSER_RETURNED_NOTHING'
  | 'CROSS_SHARD_REFERENCE'
  | 'AMBIGUOUS_SHARD'
  | 'UNPLACED_ENTITY'
  | 'ENTITY_NOT_ON_SHARD'
  | 'UNMERGEABLE_QUERY'
  | 'SHARD_MISMATCH'
  | 'UNSUPPORTED_OPERATION'
  | 'MIGRATION_FAILED'
  | 'SHARD_UNAVAILABLE'
  | 'SHARD_KEY_REQUIRED'
  | 'INVALID_SHARD_KEY'
  | 'SHARD_KEY_MISMATCH'
  | 'SHARD_KEY_CHANGED'
  | 'MOVE_NOT_POSSIBLE'
  | 'CROSS_BIND_RELATION'
  | 'READ_ONLY_SHARD'
  | 'TRANSACTION_SPANS_SHARDS'
  | 'TRANSACTION_CLOSED'
  | 'TWO_PHASE_UNAVAILABLE'
  | 'TRANSACTION_IN_DOUBT';

/** What a {@link ShardingError} is about; every field is optional because not every error has all of them. */
export interface ShardingErrorDetails {
  /** The shard involved. */
  readonly shard?: ShardId;
  /** The entity name involved. */
  readonly entity?: string;
  /** The offending value (a shard id, a primary key, a chooser's return value); secrets in it are masked. */
  readonly value?: unknown;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * The one error type this library throws for bad input and routing failures.
 * Match on `code`, which is stable; the message names the shard, entity and value, and what to do.
 * What a shard's database or MikroORM throws is not wrapped in it: that error arrives as MikroORM throws it,
 * and `shardFailureOf(error)` names its shard (see docs/errors.md). The exception is a shard that cannot be reached
 * at all: `SHARD_UNAVAILABLE`, with MikroORM's error as `cause` (see docs/failure.md).
 * No secret reaches it: passwords in connection URLs and options are masked in the message, `value` and `cause`.
 */
export class ShardingError extends Error {
  readonly code: ShardingErrorCode;
  readonly shard: ShardId | undefined;
  readonly entity: string | undefined;
  readonly value: unknown;

  constructor(code: ShardingErrorCode, message: string, details: ShardingErrorDetails = {}) {
    redactError(details.cause);
    super(redact(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ShardingError';
    this.code = code;
    this.shard = details.shard;
    this.entity = details.entity;
    this.value = redactValue(details.value);
  }

  static invalidOptions(message: string, value?: unknown): ShardingError {
    return new ShardingError('INVALID_OPTIONS', `Invalid sharding options: ${message}`, { value });
  }

  /**
   * A table suffix that is not `[a-z0-9_]+`, or a suffixed table MikroORM cannot map: refused by `tableSuffixShard()`
   * (or at discovery) before anything connects or writes. `entity` names the suffixed entities.
   */
  static invalidTableSuffix(entity: string, value: unknown, reason: string): ShardingError {
    return new ShardingError('INVALID_OPTIONS', `Invalid sharding options: table suffix ${describe(value) || 'undefined'} for ${entity}: ${reason}`, {
      entity,
      value,
    });
  }

  static noShards(): ShardingError {
    return new ShardingError('NO_SHARDS', 'No shards configured: pass `shards: { s0: { dbName: ... }, ... }` with at least one shard.');
  }

  /**
   * No shard for new entities: there is no shard chooser, and `unbound` (when known) are neither declared in
   * `shardBy` nor bound (`binds`, `defaultBind`).
   */
  static missingChooser(name: string, unbound: readonly string[] = []): ShardingError {
    const ways = `pass a \`${name}\` returning a shard id, declare the entities in \`shardBy\`, or bind them (\`binds\`, \`defaultBind\`)`;
    if (unbound.length === 0) {
      return new ShardingError('MISSING_CHOOSER', `Missing \`${name}\`: it decides which shard a new entity is written to; ${ways}.`);
    }
    const one = unbound.length === 1;
    return new ShardingError(
      'MISSING_CHOOSER',
      `No shard for new ${listOf(unbound)}: there is no \`${name}\`, and ${one ? 'it is' : 'they are'} neither declared in \`shardBy\` nor bound to a shard. ` +
        `To place ${one ? 'it' : 'them'}, ${ways}; or create ${one ? 'it' : 'them'} with { shard }. Nothing was written.`,
      { entity: one ? unbound[0] : undefined, value: unbound },
    );
  }

  /**
   * A relation between an entity bound to one shard and an entity that lives elsewhere (bound to another shard, or
   * placed by the choosers: `undefined`): a foreign key cannot cross databases. Thrown by `init()`.
   */
  static crossBindRelation(entity: string, shard: ShardId | undefined, property: string, target: string, targetShard: ShardId | undefined): ShardingError {
    const where = (id: ShardId | undefined) => (id === undefined ? 'is placed by the choosers (bound to no shard)' : `is bound to shard ${quote(id)}`);
    return new ShardingError(
      'CROSS_BIND_RELATION',
      `${entity} ${where(shard)}, but its relation "${property}" targets ${target}, which ${where(targetShard)}; a relation cannot cross databases. ` +
        `Bind both entities to one shard, or replace the relation with a plain column holding the other side's key.`,
      { entity, shard, value: targetShard },
    );
  }

  /**
   * A write routed to a shard declared `readOnly: true`, refused before anything is written on any shard. `entity`
   * labels what was written (`Author#3`, `new Book`, or an entity name for `nativeUpdate`); `source` says who routed it.
   */
  static readOnlyShard(operation: string, entity: string, shard: ShardId, source: string): ShardingError {
    return new ShardingError(
      'READ_ONLY_SHARD',
      `Cannot ${operation} ${entity} on shard ${quote(shard)} (routed by ${source}): the shard is read-only (\`readOnly: true\`). ` +
        `Route the write to a writable shard, or load the entity from one. Nothing was written.`,
      { entity, shard, value: shard },
    );
  }

  static unsupportedDriver(shard: ShardId, driver: unknown): ShardingError {
    const what =
      typeof driver === 'function' ? `driver ${driver.name || 'an anonymous class'}` : driver === undefined ? 'no `driver`' : `driver ${describe(driver)}`;
    return new ShardingError(
      'UNSUPPORTED_DRIVER',
      `Shard ${quote(shard)} has ${what}, which is not a MikroORM SQL driver. Pass \`driver\` (e.g. SqliteDriver or PostgreSqlDriver) in the shared options or in the shard's own options.`,
      { shard, value: driver },
    );
  }

  static shardInitFailed(shard: ShardId, cause: unknown): ShardingError {
    return new ShardingError('SHARD_INIT_FAILED', `Shard ${quote(shard)} failed to initialise: ${messageOf(cause)}. No shard was left open.`, { shard, cause });
  }

  /** `orm.addShard()` with the id of a registered shard. */
  static duplicateShard(shard: ShardId): ShardingError {
    return new ShardingError(
      'DUPLICATE_SHARD',
      `Shard ${quote(shard)} is already registered; remove it first (\`await orm.removeShard(${quote(shard)})\`) or pick another id. Nothing was changed.`,
      { shard, value: shard },
    );
  }

  /** A shard `orm.removeShard()` removed (or is removing), used again. */
  static shardRemoved(shard: ShardId, source: string): ShardingError {
    return new ShardingError(
      'SHARD_REMOVED',
      `Shard ${quote(shard)} was removed (\`orm.removeShard()\`) and cannot be used by ${source}; add it again with \`orm.addShard()\` to use it.`,
      { shard, value: shard },
    );
  }

  /**
   * An id that is not a key of `shards`. `source` says who gave it: a chooser (`'shardChooser'`), an option
   * (`'the { shard } option'`) or a method (`'em.on()'`).
   */
  static unknownShard(value: unknown, known: readonly ShardId[], context: { entity?: string; source: string }): ShardingError {
    const { entity, source } = context;
    const about = entity ? ` for ${entity}` : '';
    const said = /chooser$/i.test(source)
      ? `${source} returned unknown shard ${describe(value)}${about}`
      : source.endsWith(')')
        ? `Unknown shard ${describe(value)} passed to ${source}${about}`
        : `Unknown shard ${describe(value)} in ${source}${about}`;
    return new ShardingError('UNKNOWN_SHARD', `${said}; known shards are ${listOf(known)}.`, { entity, value });
  }

  /**
   * An entity routed to a shard whose MikroORM does not know it (shards may each declare their own `entities`).
   * `declaredOn` lists the shards that do; `written` says whether the refused operation was a write.
   */
  static entityNotOnShard(entity: string, entityName: string, shard: ShardId, declaredOn: readonly ShardId[], source: string, written: boolean): ShardingError {
    const fix =
      declaredOn.length > 0
        ? `Route ${entityName} to a shard that declares it (${listOf(declaredOn)}), or add ${entityName} to the \`entities\` of shard ${quote(shard)}.`
        : `No shard declares ${entityName}: add it to \`entities\`.`;
    return new ShardingError(
      'ENTITY_NOT_ON_SHARD',
      `${entity} was routed to shard ${quote(shard)} by ${source}, but that shard's \`entities\` do not include ${entityName}. ${fix} Nothing was ${written ? 'written' : 'read or written'}.`,
      { entity, shard, value: shard },
    );
  }

  static chooserFailed(chooser: string, entity: string, value: unknown, cause: unknown): ShardingError {
    return new ShardingError('CHOOSER_FAILED', `${chooser} threw for ${entity}${detail(value)}: ${messageOf(cause)}. Nothing was written or read.`, {
      entity,
      value,
      cause,
    });
  }

  static chooserReturnedNothing(chooser: string, entity: string, value: unknown): ShardingError {
    return new ShardingError(
      'CHOOSER_RETURNED_NOTHING',
      `${chooser} returned no shard for ${entity}${detail(value)}; it must return a shard id (or a non-empty list of them).`,
      { entity, value },
    );
  }

  static crossShardReference(entity: string, shard: ShardId, property: string, target: string, targetShard: ShardId): ShardingError {
    return new ShardingError(
      'CROSS_SHARD_REFERENCE',
      `${entity} on shard ${quote(shard)} references ${target} on shard ${quote(targetShard)} through "${property}"; a reference cannot cross shards. ` +
        `Route ${entity} to ${quote(targetShard)} (in shardChooser, e.g. \`em.shardOf(entity.${property})\`, or with \`{ shard: ${quote(targetShard)} }\`). Nothing was written.`,
      { entity, shard, value: targetShard },
    );
  }

  static ambiguousShard(entity: string, id: unknown, candidates: readonly ShardId[]): ShardingError {
    return new ShardingError(
      'AMBIGUOUS_SHARD',
      `Cannot make a reference to ${entity} ${describe(id)}: idChooser names ${candidates.length} candidate shards (${listOf(candidates)}). ` +
        `Pass \`{ shard }\`, or use findOne() which searches the candidates in order.`,
      { entity, value: id },
    );
  }

  /** `em.flush()` called by a chooser while the flush (or query) that called it is placing entities. */
  static flushInsideChooser(): ShardingError {
    return new ShardingError(
      'CHOOSER_FAILED',
      'em.flush() was called inside a chooser while this entity manager is placing new entities on their shards. ' +
        'A chooser may read through `em` (a directory table, say), but must not flush it: the flush under way writes everything once every entity has its shard. Nothing was written.',
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

  static shardMismatch(operation: string, entity: string, shard: ShardId, requested: ShardId): ShardingError {
    return new ShardingError(
      'SHARD_MISMATCH',
      `Cannot ${operation} ${entity} on shard ${quote(requested)}: it lives on shard ${quote(shard)}, and an entity never changes shard. ` +
        `Drop the { shard } option, or copy the row with em.on(${quote(requested)}) as a new entity.`,
      { entity, shard, value: requested },
    );
  }

  /**
   * A shard that cannot be reached: its server refused or dropped the connection, did not answer within the connect
   * timeout, is shutting down, or its circuit breaker is open. `cause` is the driver's (or MikroORM's) error; `reason`
   * replaces the cause's message when the library refused by itself (an open circuit).
   */
  static shardUnavailable(shard: ShardId, cause: unknown, reason = messageOf(cause)): ShardingError {
    return new ShardingError(
      'SHARD_UNAVAILABLE',
      `Shard ${quote(shard)} is unavailable: ${reason}. Work on other shards goes on; retry once it is back (see docs/failure.md).`,
      { shard, cause },
    );
  }

  /**
   * A query (or a primary-key lookup) on an entity declared with `requireShardKey` whose condition does not pin its
   * shard key, so it would read every shard. Thrown before any shard is read.
   */
  static shardKeyRequired(entity: string, operation: string, key: string, where: unknown): ShardingError {
    return new ShardingError(
      'SHARD_KEY_REQUIRED',
      `${operation}(${entity}) would read every shard: its condition does not name the shard key ${key}, and ${entity} is declared with requireShardKey. ` +
        `Add the key to the condition (\`{ ${key.split('.')[0]}: ... }\`, \`$in\`), pass { shard }, or set requireShardKey: false for ${entity}.`,
      { entity, value: where },
    );
  }

  /** A new entity whose shard key cannot be placed: missing, null, of a type the strategy does not take, out of its ranges. */
  static invalidShardKey(entity: string, key: string, value: unknown, reason: string): ShardingError {
    return new ShardingError('INVALID_SHARD_KEY', `${entity} cannot be placed by its shard key ${key}${detail(value)}: ${reason}. Nothing was written.`, {
      entity,
      value,
    });
  }

  /**
   * A new entity's shard (from `{ shard }`, a hand-written chooser, or the entity that reaches it) disagrees with the
   * shard its declared key maps to: queries pruned by that key would not find it.
   */
  static shardKeyMismatch(entity: string, key: string, value: unknown, keyShard: ShardId, shard: ShardId, source: string): ShardingError {
    return new ShardingError(
      'SHARD_KEY_MISMATCH',
      `${entity} would be written to shard ${quote(shard)} (${source}), but its shard key ${key}${detail(value)} maps to shard ${quote(keyShard)}: ` +
        `queries by ${key} would not find it there. Drop the { shard } option or the chooser's answer, or change ${key}. Nothing was written.`,
      { entity, shard, value: keyShard },
    );
  }

  /**
   * A loaded entity whose declared shard key (or parent) changed to a value that maps to another shard, where the row
   * cannot move there: `reason` says why (no two-phase commit, a transaction of another mode, an id that carries its
   * bucket). Left where it is, queries by the new key would not find it.
   */
  static shardKeyChanged(entity: string, key: string, value: unknown, keyShard: ShardId, shard: ShardId, reason: string): ShardingError {
    return new ShardingError(
      'SHARD_KEY_CHANGED',
      `${entity} lives on shard ${quote(shard)}, and its shard key ${key} was changed to${detail(value) || ' a value'} that maps to shard ${quote(keyShard)}, ` +
        `where the row cannot move: ${reason}. Keep the key, or create the row anew with the new key and remove this one. Nothing was written.`,
      { entity, shard, value: keyShard },
    );
  }

  /** `em.move()` of an entity that cannot move: `reason` says why. */
  static moveNotPossible(entity: string, shard: ShardId | undefined, target: ShardId, reason: string): ShardingError {
    const from = shard === undefined ? '' : ` from shard ${quote(shard)}`;
    return new ShardingError('MOVE_NOT_POSSIBLE', `Cannot move ${entity}${from} to shard ${quote(target)}: ${reason}. Nothing was written.`, {
      entity,
      shard,
      value: target,
    });
  }

  /**
   * A move would leave a reference across shards: a row that stays references a row that moves (`stays` is the row
   * that stays, `moves` the one that moves), or a moving row references one that stays. Thrown before anything is written.
   */
  static moveSplitsReference(moves: string, from: ShardId, to: ShardId, stays: string, property: string, staysReferences: boolean): ShardingError {
    const link = staysReferences ? `${stays} references it through "${property}"` : `it references ${stays} through "${property}"`;
    const fix = staysReferences
      ? `Move ${stays} with it (em.move(), or declare it in shardBy with { parent: '${property}' }), or unset the reference first.`
      : `Move ${stays} with it, unset the reference first, or make ${stays.split('#')[0]} a broadcast entity.`;
    return new ShardingError(
      'CROSS_SHARD_REFERENCE',
      `${moves} moves from shard ${quote(from)} to shard ${quote(to)}, but ${link}, and ${stays} stays on ${quote(from)}: the reference would cross shards. ${fix} Nothing was written.`,
      { entity: moves, shard: from, value: to },
    );
  }

  /** A new entity whose generated id carries another bucket than its shard key (or its parent) maps to. */
  static idBucketMismatch(entity: string, id: unknown, bucket: number, expected: number, how: string): ShardingError {
    return new ShardingError(
      'SHARD_KEY_MISMATCH',
      `${entity}'s id ${describe(id)} carries bucket ${bucket}, but its shard key maps to bucket ${expected}: a lookup by id would look on the wrong shard once buckets move. ` +
        `Make the id with ${how}. Nothing was written.`,
      { entity, value: id },
    );
  }

  static unsupported(operation: string, instead: string): ShardingError {
    return new ShardingError('UNSUPPORTED_OPERATION', `${operation} is not supported by the sharded entity manager: ${instead}.`);
  }

  /**
   * `orm.migrator` on shards that share one database (table-suffix shards): each would run the same migrations there
   * and record them in one `mikro_orm_migrations` table. Thrown before any shard runs anything.
   */
  static migrationsShareDatabase(operation: string, first: ShardId, second: ShardId): ShardingError {
    return new ShardingError(
      'UNSUPPORTED_OPERATION',
      `${operation} is not supported on shards ${quote(first)} and ${quote(second)}: they share one database (table-suffix shards), where ` +
        "MikroORM's migrator would run every migration once per shard and record them all in one mikro_orm_migrations table. " +
        "Update their tables with orm.schema.update() instead (each shard's schema generator sees only its own tables). Nothing was done.",
      { shard: second, value: [first, second] },
    );
  }

  /** A `single` transaction asked to touch a second shard; thrown before that shard is asked anything. */
  static transactionSpansShards(first: ShardId, second: ShardId): ShardingError {
    return new ShardingError(
      'TRANSACTION_SPANS_SHARDS',
      `A 'single' transaction is on shard ${quote(first)} and was asked to touch shard ${quote(second)} too. ` +
        `Route its work to one shard (\`{ shard }\`, or choosers that name one), or use mode 'multi' or 'twopc'. Nothing was written on ${quote(second)}.`,
      { shard: second, value: second },
    );
  }

  /** Work on an entity manager whose transaction has ended (committed or rolled back), or is committing. */
  static transactionClosed(state: string): ShardingError {
    return new ShardingError(
      'TRANSACTION_CLOSED',
      `This entity manager's transaction is ${state}: it cannot read or write any more. ` +
        'Use the entity manager only inside the transactional() callback that gave it, or fork a new one.',
    );
  }

  /** Two-phase commit asked of a fleet or shard that cannot take part in it. */
  static twoPhaseUnavailable(reason: string, shard?: ShardId, cause?: unknown): ShardingError {
    return new ShardingError('TWO_PHASE_UNAVAILABLE', `Two-phase commit is not available: ${reason}`, { shard, value: shard, cause });
  }

  /**
   * A two-phase commit whose decision could not be confirmed on the coordinator log: every shard is prepared, and
   * the transaction is committed if and only if the decision reached the log. `recover()` finds out and finishes it.
   */
  static transactionInDoubt(txid: string, logShard: ShardId, shards: readonly ShardId[], cause: unknown): ShardingError {
    return new ShardingError(
      'TRANSACTION_IN_DOUBT',
      `Transaction ${quote(txid)} is prepared on ${listOf(shards)}, but writing its commit decision to the coordinator log on shard ${quote(logShard)} failed: ${messageOf(cause)}. ` +
        'It is committed if the decision reached the log, and rolled back otherwise: `orm.recover()` (also run by init) finds out and finishes it on every shard. ' +
        'Until then its rows stay locked. Do not retry it blindly.',
      { shard: logShard, value: txid, cause },
    );
  }
}

/** Values echoed in messages are cut to this many characters: a message never carries a megabyte of input. */
const ECHO_LIMIT = 64;
/** Lists of shard ids in messages name this many, then say how many more. */
const LIST_LIMIT = 5;

/** The message of a cause, without its final period (the sentence around it adds one). */
function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.endsWith('.') ? text.slice(0, -1) : text;
}

function cut(text: string): string {
  return text.length > ECHO_LIMIT ? `${text.slice(0, ECHO_LIMIT)}…` : text;
}

/** A shard id (or any string) in quotes, cut to length; secrets are masked first, so a cut never leaves half of one. */
function quote(text: string): string {
  return JSON.stringify(cut(redact(String(text))));
}

/** A value for a message: strings quoted, objects by their class, everything cut to length. */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    return quote(value);
  }
  if (typeof value === 'function') {
    return `(function ${cut(value.name || 'anonymous')})`;
  }
  if (typeof value === 'object' && value !== null) {
    return `(${cut(value.constructor?.name ?? 'object')})`;
  }
  return cut(typeof value === 'bigint' ? `${value}n` : String(value));
}

/** A primitive (a primary key) after a space; nothing for an object, which the label before it already names. */
function detail(value: unknown): string {
  return value === undefined || (typeof value === 'object' && value !== null) ? '' : ` ${describe(value)}`;
}

/** `"a", "b", "c", "d", "e" and 9995 more`. */
function listOf(ids: readonly ShardId[]): string {
  const named = ids.slice(0, LIST_LIMIT).map(quote).join(', ');
  return ids.length > LIST_LIMIT ? `${named} and ${ids.length - LIST_LIMIT} more` : named;
}
