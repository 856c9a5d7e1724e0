import type { ShardId } from '../choosers.ts';
import { failedOn } from '../errors/shard-failure.ts';
import { runBounded, type FleetRunOptions } from '../fleet/run-bounded.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { ensureLogTable, logConnection, loggedDecisions, probeDecision } from './coordinator-log.ts';
import { finishPart, preparedOn, type PreparedPart } from './prepared-xacts.ts';
import type { ResolvedTwoPhase } from './settings.ts';

/** What `orm.recover()` did. Prepared transactions are named by their id (`mos:<coordinatorId>:<txid>:<shard>`). */
export interface RecoveryReport {
  /** Prepared transactions committed, because the coordinator log holds their commit decision. */
  readonly committed: readonly string[];
  /** Prepared transactions rolled back, because their transaction never reached a commit decision. */
  readonly rolledBack: readonly string[];
  /**
   * What is still in doubt: a shard that could not be asked (no `gid`), a prepared transaction its shard failed to
   * finish, or one whose coordinator is still deciding it (alive, it finishes the transaction itself). Run
   * `recover()` again later. A shard that could not be reached has a `SHARD_UNAVAILABLE` error.
   */
  readonly failed: readonly { readonly shard: ShardId; readonly gid?: string; readonly error: unknown }[];
}

const NOTHING: RecoveryReport = Object.freeze({ committed: [], rolledBack: [], failed: [] });

/**
 * Resolves every transaction this coordinator left prepared on any shard: COMMIT PREPARED where the coordinator log
 * holds the commit decision, ROLLBACK PREPARED otherwise. Safe to run from several processes at once: recoveries of
 * one coordinator take turns (an advisory lock on the log shard), and a transaction whose coordinator is still
 * deciding makes the recovery wait for its decision, or skip it. Finally it deletes the log rows of transactions
 * that have nothing prepared left anywhere. Prepared transactions of other coordinators are never touched.
 * It throws when the log shard fails (`SHARD_UNAVAILABLE` when it cannot be reached): without the log, nothing is decided.
 */
export async function recover(orm: ShardedMikroORM, options: Pick<FleetRunOptions, 'concurrency'> = {}): Promise<RecoveryReport> {
  const config = orm.transactionConfig.twoPhase;
  if (!config) {
    return NOTHING;
  }
  try {
    return await resolveInDoubt(orm, config, options);
  } catch (error) {
    throw failedOn('recover', config.logShard, error);
  }
}

/** A shard's error in the report: a shard that could not be reached as `SHARD_UNAVAILABLE`, recorded for `shardFailureOf`. */
function failureOf(shard: ShardId, error: unknown): unknown {
  return error === undefined ? undefined : failedOn('recover', shard, error);
}

async function resolveInDoubt(orm: ShardedMikroORM, config: ResolvedTwoPhase, options: Pick<FleetRunOptions, 'concurrency'>): Promise<RecoveryReport> {
  await ensureLogTable(orm, config);
  const connection = logConnection(orm, config);
  const trx = await connection.begin();
  const committed: string[] = [];
  const rolledBack: string[] = [];
  const failed: { shard: ShardId; gid?: string; error: unknown }[] = [];
  try {
    await connection.execute(
      'select pg_advisory_xact_lock(hashtext(?))',
      [`mikro_orm_sharding:recover:${config.logTable}:${config.coordinatorId}`],
      'run',
      trx,
    );
    // Decisions first, prepared transactions second: a logged transaction prepared everything before its row was
    // committed, so whatever of it is not found prepared below is finished.
    const logged = await loggedDecisions(connection, config, trx);
    // A coordinator deciding right now holds its row's lock for milliseconds; one holding it longer is stuck.
    await connection.execute(`set local lock_timeout = '5s'`, [], 'run', trx);
    const scans = await runBounded(orm.shardIds, shard => preparedOn(orm, shard, config.coordinatorId), { ...options, keepGoing: true });
    const unasked = new Set<ShardId>();
    const byTransaction = new Map<string, PreparedPart[]>();
    for (const scan of scans) {
      if (scan.status === 'done') {
        scan.value.forEach(part => byTransaction.set(part.txid, [...(byTransaction.get(part.txid) ?? []), part]));
      } else {
        unasked.add(scan.shard);
        failed.push({ shard: scan.shard, error: scan.status === 'failed' ? failureOf(scan.shard, scan.error) : undefined });
      }
    }
    const open = new Set<string>();
    for (const [txid, parts] of byTransaction) {
      let commit: boolean;
      try {
        commit = logged.has(txid) || (await probeDecision(connection, config, trx, txid));
      } catch (error) {
        // The log shard's error: it could not tell the decision.
        parts.forEach(part => failed.push({ shard: part.shard, gid: part.gid, error: failureOf(config.logShard, error) }));
        open.add(txid);
        continue;
      }
      const outcomes = await runBounded(
        parts.map(part => part.shard),
        shard =>
          finishPart(
            orm,
            parts.find(part => part.shard === shard)!,
            commit,
          ),
        {
          ...options,
          keepGoing: true,
        },
      );
      outcomes.forEach((outcome, i) => {
        const { shard, gid } = parts[i]!;
        if (outcome.status === 'done') {
          if (outcome.value === 'done') {
            (commit ? committed : rolledBack).push(gid);
          } else if (outcome.value === 'busy') {
            // Another process (its coordinator, or another recovery) is finishing it: keep its decision logged.
            open.add(txid);
          }
        } else {
          failed.push({ shard, gid, error: outcome.status === 'failed' ? failureOf(shard, outcome.error) : undefined });
          open.add(txid);
        }
      });
    }
    for (const [txid, shards] of logged) {
      if (!open.has(txid) && !shards.some(shard => unasked.has(shard))) {
        await connection.execute(`delete from "${config.logTable}" where "txid" = ?`, [txid], 'run', trx);
      }
    }
    await connection.commit(trx);
  } catch (error) {
    await connection.rollback(trx).catch(() => undefined);
    throw error;
  }
  return { committed, rolledBack, failed };
}
