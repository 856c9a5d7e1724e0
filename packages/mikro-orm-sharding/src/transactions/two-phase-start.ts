import { ShardingError } from '../errors/errors.ts';
import { runBounded } from '../fleet/run-bounded.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { ensureLogTable, GID_LIMIT, gidOf } from './coordinator-log.ts';
import { checkPreparedEnabled } from './prepared-xacts.ts';
import { recover } from './recover.ts';
import { notPostgres } from './start.ts';

/** Shard ids two-phase commit can name in a prepared transaction's id (a quoted SQL literal). */
const GID_SAFE = /^[A-Za-z0-9_.:-]+$/;

/**
 * What `init()` does for `twoPhaseCommit`: refuses a fleet that is not PostgreSQL throughout, or whose shard ids
 * cannot be part of a prepared transaction's id; then (when connecting) checks that every server can prepare
 * transactions, creates the coordinator log table, and resolves transactions left in doubt.
 */
export async function startTwoPhase(orm: ShardedMikroORM, connect: boolean): Promise<void> {
  const config = orm.transactionConfig.twoPhase!;
  const other = notPostgres(orm);
  if (other !== undefined) {
    throw ShardingError.twoPhaseUnavailable(
      `shard ${JSON.stringify(other.shard)} is ${other.family === 'sqlite' ? 'SQLite' : `a ${other.platform} database`}; \`twoPhaseCommit\` needs PostgreSQL (PREPARE TRANSACTION) on every shard, and a fleet mixing drivers cannot commit in two phases. Drop \`twoPhaseCommit\` and use mode 'multi' or 'single'.`,
      other.shard,
    );
  }
  for (const shard of orm.shardIds) {
    if (!GID_SAFE.test(shard) || Buffer.byteLength(gidOf(config.coordinatorId, '0'.repeat(32), shard)) > GID_LIMIT) {
      throw ShardingError.invalidOptions(
        `shard id ${JSON.stringify(shard.slice(0, 64))} cannot name a prepared transaction: with \`twoPhaseCommit\`, shard ids are letters, digits, '_', '.', ':' and '-', and at most ${GID_LIMIT - 38 - config.coordinatorId.length} characters.`,
        shard,
      );
    }
  }
  if (!connect) {
    return;
  }
  const checks = await runBounded(orm.shardIds, shard => checkPreparedEnabled(orm, shard), { keepGoing: true });
  const failed = checks.find(check => check.status === 'failed');
  if (failed?.status === 'failed') {
    throw failed.error;
  }
  if (!config.recoverOnInit) {
    await ensureLogTable(orm, config);
    return;
  }
  const report = await recover(orm);
  for (const { shard, gid, error } of report.failed) {
    orm
      .shard(shard)
      .config.getLogger()
      .warn(
        'query',
        `recover() left ${gid ?? 'the shard'} in doubt on shard ${shard}: ${error instanceof Error ? error.message : String(error)}; run orm.recover() again`,
      );
  }
}
