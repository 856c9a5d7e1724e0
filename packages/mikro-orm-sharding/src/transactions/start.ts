import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { traitsOf } from '../read/platform-traits.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { isTransactionMode, type ShardedTransactionOptions } from './settings.ts';
import type { TransactionSettings } from './transaction.ts';

/**
 * Marks the options of a transaction that is never committed (`rollbackScope()`): a transaction nested in it runs
 * as it would outside it, in its own mode (`{ mode }`, else the fleet's), and a flush in it may move rows.
 */
export const ROLLBACK_ONLY: unique symbol = Symbol('mikro-orm-sharding.rollbackOnly');

/**
 * The settings of a transaction about to begin, checked before anything runs: the mode (the call's, else the
 * fleet's), and for `twopc` that the fleet can do it.
 */
export function settingsOf(orm: ShardedMikroORM, options: ShardedTransactionOptions, operation: string): TransactionSettings {
  const mode = options.mode ?? orm.transactionConfig.mode;
  if (!isTransactionMode(mode)) {
    throw ShardingError.invalidOptions(`the transaction \`mode\` must be 'single', 'multi' or 'twopc'; got ${describe(mode)}.`, mode);
  }
  if (mode === 'twopc' && !orm.transactionConfig.twoPhase) {
    throw twoPhaseUnavailable(orm);
  }
  const { isolationLevel, readOnly, loggerContext } = options;
  const rollbackOnly = (options as { [ROLLBACK_ONLY]?: boolean })[ROLLBACK_ONLY] === true;
  return { mode, isolationLevel, readOnly, loggerContext, operation, rollbackOnly };
}

/** Why a fleet cannot commit in two phases: a shard that is not PostgreSQL, or no `twoPhaseCommit` in init. */
function twoPhaseUnavailable(orm: ShardedMikroORM): ShardingError {
  const other = notPostgres(orm);
  if (other !== undefined) {
    return ShardingError.twoPhaseUnavailable(
      `shard ${describe(other.shard)} is ${other.family === 'sqlite' ? 'SQLite' : `a ${other.platform} database`}; 'twopc' needs PostgreSQL (PREPARE TRANSACTION) on every shard. Use mode 'multi' or 'single'.`,
      other.shard,
    );
  }
  return ShardingError.twoPhaseUnavailable(
    "mode 'twopc' needs `twoPhaseCommit: { coordinatorId, logShard }` in init(): the coordinator log that makes the commit decision durable.",
  );
}

/** The first shard whose database is not PostgreSQL, if any. */
export function notPostgres(orm: ShardedMikroORM): { shard: ShardId; family: string; platform: string } | undefined {
  for (const shard of orm.shardIds) {
    const platform = orm.shard(shard).config.getPlatform();
    const { family } = traitsOf(platform);
    if (family !== 'postgresql') {
      return { shard, family, platform: platform.constructor.name.replace(/Platform$/, '') };
    }
  }
  return undefined;
}
