import type { MigrationInfo, MigrationRow } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';

/** What `up()` or `down()` did on one shard. */
export interface ShardMigrationReport {
  readonly shard: ShardId;
  /** `done`; `failed`; or `skipped`: not started, because another shard had failed first. */
  readonly status: 'done' | 'failed' | 'skipped';
  /**
   * The migrations applied (`up`) or reverted (`down`), in order; empty when the shard had nothing to do. On a
   * failed shard, the ones that stay applied: none when MikroORM runs the batch all-or-nothing (its default).
   */
  readonly migrations: readonly string[];
  /** On a failed shard, the migration that failed (when the failure happened inside one). */
  readonly failedMigration?: string;
  /** On a failed shard, MikroORM's error. */
  readonly error?: unknown;
  /** Milliseconds the shard took; absent when skipped. */
  readonly ms?: number;
}

/** One shard's migrations, as `status()` reports them. */
export interface ShardMigrationState {
  readonly shard: ShardId;
  /** The folder of migrations the shard reads (absolute path), or `migrationsList`. */
  readonly source: string;
  /** The migrations executed on the shard, oldest first. */
  readonly executed: readonly string[];
  /** The migrations of its folder not executed on it yet, in the order `up()` would run them. */
  readonly pending: readonly string[];
  /** The last executed migration; undefined when none is. */
  readonly last: string | undefined;
}

/** Shards that read the same migrations but are not at the same one. */
export interface MigrationDrift {
  /** The migrations folder (or `migrationsList`) they share. */
  readonly source: string;
  /** The shards grouped by the migrations they have executed, most advanced first. */
  readonly groups: readonly { readonly last: string | undefined; readonly executed: readonly string[]; readonly shards: readonly ShardId[] }[];
}

/** The fleet's migrations, from `orm.migrator.status()`. */
export interface FleetMigrationStatus {
  /** Every targeted shard, in order. */
  readonly shards: readonly ShardMigrationState[];
  /** No shard has a pending migration. */
  readonly upToDate: boolean;
  /** Where shards sharing migrations have executed different ones; empty when they agree. */
  readonly drift: readonly MigrationDrift[];
  /** One line per source: where each shard stands, naming the shards that drift. */
  readonly summary: string;
}

/** Builds a shard's state from what MikroORM's migrator returned. */
export function shardState(shard: ShardId, source: string, executed: readonly MigrationRow[], pending: readonly MigrationInfo[]): ShardMigrationState {
  const names = executed.map(row => row.name);
  return { shard, source, executed: names, pending: pending.map(m => m.name), last: names.at(-1) };
}

/** Groups the shards by source and flags the sources whose shards executed different migrations. */
export function fleetStatus(shards: readonly ShardMigrationState[]): FleetMigrationStatus {
  const bySource = new Map<string, ShardMigrationState[]>();
  for (const state of shards) {
    bySource.set(state.source, [...(bySource.get(state.source) ?? []), state]);
  }
  const drift: MigrationDrift[] = [];
  const lines: string[] = [];
  for (const [source, states] of bySource) {
    const groups = new Map<string, { last: string | undefined; executed: readonly string[]; shards: ShardId[] }>();
    for (const state of states) {
      const key = JSON.stringify(state.executed);
      const group = groups.get(key);
      if (group) group.shards.push(state.shard);
      else groups.set(key, { last: state.last, executed: state.executed, shards: [state.shard] });
    }
    const ordered = [...groups.values()].sort((a, b) => b.executed.length - a.executed.length);
    const at = (group: (typeof ordered)[number]) => `${group.shards.join(', ')} at ${group.last ?? '(none executed)'}`;
    const pending = states.filter(state => state.pending.length > 0).map(state => `${state.shard} (${state.pending.length})`);
    if (ordered.length > 1) {
      drift.push({ source, groups: ordered });
      lines.push(`${source}: DRIFT: ${ordered.map(at).join('; ')}.${pending.length > 0 ? ` Pending on ${pending.join(', ')}.` : ''}`);
    } else {
      lines.push(`${source}: ${at(ordered[0]!)}; ${pending.length > 0 ? `pending on ${pending.join(', ')}` : 'nothing pending'}.`);
    }
  }
  return { shards, upToDate: shards.every(state => state.pending.length === 0), drift, summary: lines.join('\n') };
}
