import type { Transaction } from '@mikro-orm/core';
import type { AbstractSqlConnection } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import type { ResolvedTwoPhase } from './settings.ts';

/**
 * The coordinator log of two-phase commit: one table on the log shard, one row per transaction whose decision is
 * COMMIT. A transaction's row is inserted, uncommitted, before any shard prepares; committing that insert is the
 * commit decision. So a row that exists means commit, and no row means abort (presumed abort); while the
 * coordinator is deciding, its uncommitted row makes anyone else inserting the same id wait (see {@link probeDecision}).
 */

/** The id of one shard's prepared transaction: names the coordinator, the transaction and the shard. */
export function gidOf(coordinatorId: string, txid: string, shard: ShardId): string {
  return `mos:${coordinatorId}:${txid}:${shard}`;
}

/** The transaction id and shard of a prepared transaction of this coordinator, or undefined for anyone else's. */
export function parseGid(coordinatorId: string, gid: string): { readonly txid: string; readonly shard: ShardId } | undefined {
  const prefix = `mos:${coordinatorId}:`;
  if (!gid.startsWith(prefix)) {
    return undefined;
  }
  const rest = gid.slice(prefix.length);
  const colon = rest.indexOf(':');
  return colon > 0 ? { txid: rest.slice(0, colon), shard: rest.slice(colon + 1) } : undefined;
}

/** Prepared transaction ids are at most 200 bytes; shard ids are limited so that theirs fit. */
export const GID_LIMIT = 200;

/** The log shard's connection (its MikroORM's own, outside any entity manager's transaction). */
export function logConnection(orm: ShardedMikroORM, config: ResolvedTwoPhase): AbstractSqlConnection {
  return orm.shard(config.logShard).em.getConnection('write') as AbstractSqlConnection;
}

/** Creates the log table when missing; several processes may do it at once (an advisory lock orders them). */
export async function ensureLogTable(orm: ShardedMikroORM, config: ResolvedTwoPhase): Promise<void> {
  const connection = logConnection(orm, config);
  const trx = await connection.begin();
  try {
    await connection.execute('select pg_advisory_xact_lock(hashtext(?))', [`mikro_orm_sharding:${config.logTable}`], 'run', trx);
    await connection.execute(
      `create table if not exists "${config.logTable}" (` +
        '"txid" varchar(64) primary key, "coordinator" varchar(64) not null, "shards" text not null, "created_at" timestamptz not null default now())',
      [],
      'run',
      trx,
    );
    await connection.commit(trx);
  } catch (error) {
    await connection.rollback(trx).catch(() => undefined);
    throw error;
  }
}

/** The commit decision of one transaction, not yet taken: its row inserted in an open transaction on the log shard. */
export interface PendingDecision {
  /** Commits the row: from then on the transaction is committed, whatever happens. */
  commit(): Promise<void>;
  /** Drops the row: the transaction is rolled back. */
  abandon(): Promise<void>;
}

/** Inserts the transaction's row in a transaction of its own on the log shard, and keeps that transaction open. */
export async function openDecision(orm: ShardedMikroORM, config: ResolvedTwoPhase, txid: string, shards: readonly ShardId[]): Promise<PendingDecision> {
  const connection = logConnection(orm, config);
  const trx = await connection.begin();
  try {
    await connection.execute(
      `insert into "${config.logTable}" ("txid", "coordinator", "shards") values (?, ?, ?)`,
      [txid, config.coordinatorId, JSON.stringify(shards)],
      'run',
      trx,
    );
  } catch (error) {
    await connection.rollback(trx).catch(() => undefined);
    throw error;
  }
  return {
    commit: () => connection.commit(trx),
    abandon: () => connection.rollback(trx),
  };
}

/** Forgets a transaction whose every shard has committed. */
export async function forget(orm: ShardedMikroORM, config: ResolvedTwoPhase, txid: string): Promise<void> {
  await logConnection(orm, config).execute(`delete from "${config.logTable}" where "txid" = ?`, [txid], 'run');
}

/** The committed decisions of this coordinator: transaction id and the shards it prepared. */
export async function loggedDecisions(connection: AbstractSqlConnection, config: ResolvedTwoPhase, trx: Transaction): Promise<Map<string, readonly ShardId[]>> {
  const rows: { txid: string; shards: string }[] = await connection.execute(
    `select "txid", "shards" from "${config.logTable}" where "coordinator" = ?`,
    [config.coordinatorId],
    'all',
    trx,
  );
  return new Map(rows.map(row => [row.txid, JSON.parse(row.shards) as ShardId[]]));
}

/**
 * The decision on a transaction found prepared, taken inside `trx` (recovery's transaction on the log shard): true
 * for commit. It inserts the transaction's row and undoes the insert at once. A committed row makes the insert a
 * no-op (commit); a row still being decided makes it wait for the coordinator (`lock_timeout` ends the wait: the
 * coordinator is alive, and will finish it); otherwise the insert goes through, and no decision can follow any more,
 * since a coordinator inserts its row before any shard prepares (abort).
 */
export async function probeDecision(connection: AbstractSqlConnection, config: ResolvedTwoPhase, trx: Transaction, txid: string): Promise<boolean> {
  const savepoint = await connection.begin({ ctx: trx });
  try {
    const inserted: unknown[] = await connection.execute(
      `insert into "${config.logTable}" ("txid", "coordinator", "shards") values (?, ?, '[]') on conflict ("txid") do nothing returning "txid"`,
      [txid, config.coordinatorId],
      'all',
      savepoint,
    );
    return inserted.length === 0;
  } finally {
    await connection.rollback(savepoint);
  }
}
