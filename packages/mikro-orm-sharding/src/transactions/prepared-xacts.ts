import type { AbstractSqlConnection } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { parseGid } from './coordinator-log.ts';

/** What PostgreSQL says of prepared transactions, per shard. */

function disabled(shard: ShardId, cause?: unknown): ShardingError {
  return ShardingError.twoPhaseUnavailable(
    `shard ${JSON.stringify(shard)} runs on a PostgreSQL server with max_prepared_transactions = 0, which disables PREPARE TRANSACTION. ` +
      'Set max_prepared_transactions in postgresql.conf (at least the number of two-phase commits that may be under way at once; max_connections is safe) and restart the server.',
    shard,
    cause,
  );
}

/** PostgreSQL's refusal of PREPARE TRANSACTION on a server with max_prepared_transactions = 0, as a `ShardingError` naming the setting. */
export function preparedDisabled(shard: ShardId, error: unknown): ShardingError | undefined {
  return error instanceof Error && /prepared transactions are disabled/i.test(error.message) ? disabled(shard, error) : undefined;
}

function connectionOf(orm: ShardedMikroORM, shard: ShardId): AbstractSqlConnection {
  return orm.shard(shard).em.getConnection('write') as AbstractSqlConnection;
}

/** Throws `TWO_PHASE_UNAVAILABLE` when the shard's server cannot prepare transactions. */
export async function checkPreparedEnabled(orm: ShardedMikroORM, shard: ShardId): Promise<void> {
  const row: { max_prepared_transactions?: string } | undefined = await connectionOf(orm, shard).execute('show max_prepared_transactions', [], 'get');
  if (Number(row?.max_prepared_transactions ?? 0) === 0) {
    throw disabled(shard);
  }
}

/** One prepared transaction of this coordinator on a shard. */
export interface PreparedPart {
  readonly shard: ShardId;
  readonly gid: string;
  readonly txid: string;
}

/** The transactions this coordinator prepared on a shard (its database, and its shard id in their ids). */
export async function preparedOn(orm: ShardedMikroORM, shard: ShardId, coordinatorId: string): Promise<PreparedPart[]> {
  const rows: { gid: string }[] = await connectionOf(orm, shard).execute(
    'select gid from pg_prepared_xacts where database = current_database() and starts_with(gid, ?)',
    [`mos:${coordinatorId}:`],
    'all',
  );
  return rows.flatMap(({ gid }) => {
    const parsed = parseGid(coordinatorId, gid);
    return parsed?.shard === shard ? [{ shard, gid, txid: parsed.txid }] : [];
  });
}

/**
 * How COMMIT PREPARED or ROLLBACK PREPARED of a part went: `'done'` by this call, `'gone'` (someone else finished
 * it before), or `'busy'` (someone else is finishing it right now, and may yet fail).
 */
export type Finished = 'done' | 'gone' | 'busy';

/** COMMIT PREPARED or ROLLBACK PREPARED of one part, outside any transaction. */
export async function finishPart(orm: ShardedMikroORM, part: PreparedPart, commit: boolean): Promise<Finished> {
  try {
    await connectionOf(orm, part.shard).execute(`${commit ? 'commit' : 'rollback'} prepared '${part.gid}'`, [], 'run');
    return 'done';
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === '42704') {
      return 'gone';
    }
    if (code === '55000' && /is busy/.test(message ?? '')) {
      return 'busy';
    }
    throw error;
  }
}
