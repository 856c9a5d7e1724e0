import type { IDatabaseDriver, Options, TransactionOptions } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';

/**
 * How a transaction that touches several shards commits:
 * - `'single'`: it may touch one shard only; asking for a second throws `TRANSACTION_SPANS_SHARDS` before anything
 *   is written there. One shard's transaction is atomic.
 * - `'multi'`: one transaction per shard, committed one after another; if a commit fails, the shards not yet
 *   committed roll back and the error names the shards that committed (`shardFailureOf(error).done`).
 * - `'twopc'`: two-phase commit on PostgreSQL: every shard prepares (`PREPARE TRANSACTION`), the decision is written
 *   to a coordinator log, then every shard commits. All or nothing, also across crashes (`orm.recover()`).
 */
export type TransactionMode = 'single' | 'multi' | 'twopc';

/** Where two-phase commit keeps its decisions, and who it is. Required for `transactionMode: 'twopc'` (or `{ mode: 'twopc' }`). */
export interface TwoPhaseCommitOptions<Id extends string = ShardId> {
  /**
   * Names this application in every prepared transaction's id (`mos:<coordinatorId>:<txid>:<shard>`), so that
   * `recover()` resolves its own in-doubt transactions and never another application's. Keep it the same across
   * restarts and processes of one application, and different between applications sharing a database server.
   * Letters, digits, `_`, `-` and `.`, at most 40 characters.
   *
   * @example 'billing'
   */
  readonly coordinatorId: string;
  /** The shard whose database holds the coordinator log table. */
  readonly logShard: Id;
  /**
   * The coordinator log table, created on `logShard` by `init()` when missing.
   * @default 'mikro_orm_sharding_2pc'
   */
  readonly logTable?: string;
  /**
   * Run `orm.recover()` during `init()` (when `connect` is not false), so that transactions left in doubt by a crash
   * are finished before the application starts.
   * @default true
   */
  readonly recoverOnInit?: boolean;
}

/**
 * Options of the sharded entity manager's `transactional()` and `begin()`: MikroORM's, passed to every shard's
 * transaction (`isolationLevel`, `readOnly`, `loggerContext`) or its fork (`clear`, `flushMode`, `signal`, ...), plus
 * the commit mode.
 */
export interface ShardedTransactionOptions extends Omit<TransactionOptions, 'ctx' | 'sessionContext'> {
  /**
   * How the transaction commits across shards (see {@link TransactionMode}).
   * @default the fleet's `transactionMode` (`'multi'` unless set in `init()`)
   */
  mode?: TransactionMode;
}

/** The resolved transaction settings of a fleet. */
export interface TransactionConfig {
  readonly mode: TransactionMode;
  readonly twoPhase: ResolvedTwoPhase | undefined;
}

export interface ResolvedTwoPhase {
  readonly coordinatorId: string;
  readonly logShard: ShardId;
  readonly logTable: string;
  readonly recoverOnInit: boolean;
}

const MODES: readonly TransactionMode[] = ['single', 'multi', 'twopc'];
const NAME = /^[A-Za-z0-9_.-]{1,40}$/;
const TABLE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Whether a value is one of the modes. */
export function isTransactionMode(mode: unknown): mode is TransactionMode {
  return MODES.includes(mode as TransactionMode);
}

/** Checks `transactionMode` and `twoPhaseCommit` of the init options. Throws `INVALID_OPTIONS`. */
export function transactionConfig(mode: unknown, twoPhase: unknown, shardIds: readonly ShardId[]): TransactionConfig {
  if (mode !== undefined && !isTransactionMode(mode)) {
    throw ShardingError.invalidOptions(`\`transactionMode\` must be 'single', 'multi' or 'twopc'; got ${describe(mode)}.`, mode);
  }
  if (twoPhase === undefined) {
    if (mode === 'twopc') {
      throw ShardingError.invalidOptions(
        "`transactionMode: 'twopc'` needs `twoPhaseCommit: { coordinatorId, logShard }`: where the coordinator log lives and whose transactions it logs.",
      );
    }
    return { mode: mode ?? 'multi', twoPhase: undefined };
  }
  if (twoPhase === null || typeof twoPhase !== 'object') {
    throw ShardingError.invalidOptions('`twoPhaseCommit` must be an object `{ coordinatorId, logShard }`.', twoPhase);
  }
  const { coordinatorId, logShard, logTable = 'mikro_orm_sharding_2pc', recoverOnInit = true } = twoPhase as Partial<TwoPhaseCommitOptions>;
  if (typeof coordinatorId !== 'string' || !NAME.test(coordinatorId)) {
    throw ShardingError.invalidOptions(
      `\`twoPhaseCommit.coordinatorId\` must be 1 to 40 letters, digits, '_', '-' or '.'; got ${describe(coordinatorId)}.`,
      coordinatorId,
    );
  }
  if (typeof logShard !== 'string' || !shardIds.includes(logShard)) {
    throw ShardingError.invalidOptions(`\`twoPhaseCommit.logShard\` must be one of the shards; got ${describe(logShard)}.`, logShard);
  }
  if (typeof logTable !== 'string' || !TABLE.test(logTable)) {
    throw ShardingError.invalidOptions(`\`twoPhaseCommit.logTable\` must be a plain SQL table name; got ${describe(logTable)}.`, logTable);
  }
  return { mode: mode ?? 'multi', twoPhase: { coordinatorId, logShard, logTable, recoverOnInit: recoverOnInit !== false } };
}

/**
 * The shards' MikroORM options with the coordinator log table left out of MikroORM's schema management on the log
 * shard (`schemaGenerator.skipTables`): `orm.schema.update()` would otherwise drop it as a table no entity maps.
 */
export function withLogTableSkipped<D extends IDatabaseDriver>(configs: Map<ShardId, Partial<Options<D>>>, config: TransactionConfig): void {
  const twoPhase = config.twoPhase;
  if (!twoPhase) {
    return;
  }
  const own = configs.get(twoPhase.logShard)!;
  const generator = own.schemaGenerator ?? {};
  configs.set(twoPhase.logShard, { ...own, schemaGenerator: { ...generator, skipTables: [...(generator.skipTables ?? []), twoPhase.logTable] } });
}
