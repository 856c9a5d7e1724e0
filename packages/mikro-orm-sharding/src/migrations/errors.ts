import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import type { ShardMigrationReport } from './report.ts';

/**
 * A migrator operation failed on a shard (`code` `MIGRATION_FAILED`). `shard` and `migration` name where,
 * `cause` is MikroORM's own error, and `report` tells what every shard did: migrated, failed, or not started
 * because the failure stopped new work. Running the operation again resumes: shards already migrated are skipped.
 */
export class ShardedMigrationError extends ShardingError {
  /** The migration that failed, when the failure happened inside one. */
  readonly migration: string | undefined;
  /** Every targeted shard's outcome, in order. */
  readonly report: readonly ShardMigrationReport[];

  /** @internal */
  constructor(operation: string, shard: ShardId, migration: string | undefined, cause: unknown, report: readonly ShardMigrationReport[]) {
    const inside = migration ? ` in migration ${migration}` : '';
    const list = (status: ShardMigrationReport['status']) => report.filter(r => r.status === status && r.shard !== shard).map(r => r.shard);
    const done = list('done');
    const skipped = list('skipped');
    const failed = list('failed');
    const parts = [
      `${operation} failed on shard "${shard}"${inside}: ${cause instanceof Error ? cause.message : String(cause)}.`,
      failed.length > 0 ? `Also failed: ${failed.join(', ')}.` : '',
      done.length > 0 ? `Done: ${done.join(', ')}.` : '',
      skipped.length > 0 ? `Not started: ${skipped.join(', ')}.` : '',
      'Fix the cause and run it again: shards with nothing left to do are skipped (see docs/operations.md).',
    ];
    super('MIGRATION_FAILED', parts.filter(Boolean).join(' '), { shard, cause });
    this.name = 'ShardedMigrationError';
    this.migration = migration;
    this.report = report;
  }
}
