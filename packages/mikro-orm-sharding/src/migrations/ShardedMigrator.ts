import type { IMigrator, MigrateOptions, MigrationDiff, MigrationInfo, MigrationRow } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { doneValues, fleetRunTargets, runBounded, type FleetRunOptions, type ShardOutcome } from '../fleet/run-bounded.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { ShardedMigrationError } from './errors.ts';
import { writableShards } from '../routing/read-only.ts';
import { migrationsSource } from './folder.ts';
import { refuseSharedDatabases } from './shared-database.ts';
import { fleetStatus, shardState, type FleetMigrationStatus, type ShardMigrationReport } from './report.ts';

/** Options of `orm.migrator.up()` and `down()`: which shards, how many at once, and MikroORM's own `from`/`to`/`migrations`. */
export interface MigrateFleetOptions extends FleetRunOptions, Omit<MigrateOptions, 'transaction'> {}

/** Options of `orm.migrator.create()`. */
export interface CreateFleetMigrationOptions {
  /**
   * The shard whose schema diff (its entities against its database, or its snapshot) becomes the migration,
   * written to that shard's migrations folder.
   * @default the first shard (in the order of `shards`) of each migrations folder: one migration per folder
   */
  readonly reference?: ShardId;
  /**
   * Only the folders of these shards.
   * @default every shard's
   */
  readonly shards?: readonly ShardId[];
  /** The migration's name, appended to its file and class name (MikroORM's `--name`). */
  readonly name?: string;
  /** An empty migration to fill in by hand (MikroORM's `--blank`). */
  readonly blank?: boolean;
  /** The initial migration: the whole schema (MikroORM's `--initial`). */
  readonly initial?: boolean;
  /** Write it to this folder instead of the reference shard's; only with one folder. */
  readonly path?: string;
}

/** One migration written by `orm.migrator.create()`. */
export interface CreatedMigration {
  /** The shard whose schema diff it holds. */
  readonly reference: ShardId;
  /** The folder it was written to. */
  readonly source: string;
  /** The shards that read this folder, in order. */
  readonly shards: readonly ShardId[];
  /** Its file name; empty when the schema had no changes (as MikroORM's `create()` answers), and nothing was written. */
  readonly fileName: string;
  /** Its code. */
  readonly code: string;
  /** The SQL statements of `up` and `down`. */
  readonly diff: MigrationDiff;
}

/**
 * MikroORM's migrator (`@mikro-orm/migrations`) on every shard, or on `{ shards }`, at most `concurrency` shards at a
 * time, with a per-shard report. Each shard reads its own MikroORM `migrations` options: shards sharing them share
 * one folder; a shard with its own `migrations.path` (a named database) has its own. Every shard's MikroORM needs
 * MikroORM's Migrator extension: `extensions: [Migrator]` in the shared options.
 *
 * A failure on one shard starts no further shard, waits for the running ones, and throws a
 * {@link ShardedMigrationError} naming the shard and the migration, with MikroORM's error as `cause` and the report.
 * Running it again resumes: shards already migrated have nothing pending.
 *
 * @example
 * ```ts
 * const report = await orm.migrator.up({ concurrency: 8 });
 * const { drift, summary } = await orm.migrator.status();
 * ```
 */
export class ShardedMigrator {
  readonly #orm: ShardedMikroORM;

  /** @internal Use `orm.migrator`. */
  constructor(orm: ShardedMikroORM) {
    this.#orm = orm;
  }

  /**
   * Generates one migration per migrations folder (or only the `reference` shard's), from the reference shard's
   * schema diff, like `mikro-orm migration:create`. Nothing runs on any database: apply it with `up()`.
   */
  async create(options: CreateFleetMigrationOptions = {}): Promise<CreatedMigration[]> {
    const { ids } = fleetRunTargets(
      this.#orm.shardIds,
      { shards: options.reference === undefined ? options.shards : [options.reference] },
      'orm.migrator.create()',
    );
    refuseSharedDatabases(this.#orm, ids, 'orm.migrator.create()');
    const sources = this.#orm.shardIds.map(id => ({ id, ...migrationsSource(this.#orm.shard(id)) }));
    const folders = new Map<unknown, { reference: ShardId; source: string; shards: ShardId[] }>();
    for (const { id, key, label } of sources) {
      if (ids.includes(id) && !folders.has(key)) {
        folders.set(key, { reference: id, source: label, shards: sources.filter(other => other.key === key).map(other => other.id) });
      }
    }
    if (options.path !== undefined && folders.size > 1) {
      throw ShardingError.invalidOptions(
        `\`path\` of orm.migrator.create() names one folder, but the shards read ${folders.size} (${[...folders.values()].map(f => f.source).join(', ')}); pass \`reference\` too.`,
        options.path,
      );
    }
    const references = [...folders.values()];
    const outcomes = await runBounded(
      references.map(folder => folder.reference),
      id => this.#migrator(id).create(options.path, options.blank ?? false, options.initial ?? false, options.name),
      { concurrency: 1 },
    );
    const failure = outcomes.find(outcome => outcome.status === 'failed');
    if (failure) {
      const report = outcomes.map(outcome => reportOf(outcome, [], undefined, result => (result.fileName ? [result.fileName] : [])));
      throw new ShardedMigrationError('orm.migrator.create()', failure.shard, undefined, failure.error, report);
    }
    return doneValues(outcomes).map(({ fileName, code, diff }, i) => ({ ...references[i]!, fileName, code, diff }));
  }

  /** Applies pending migrations on each shard (MikroORM's `up()`: all of them, or `to`/`from`/`migrations`). */
  up(options: MigrateFleetOptions = {}): Promise<ShardMigrationReport[]> {
    return this.#migrate('up', options);
  }

  /** Reverts migrations on each shard (MikroORM's `down()`: the last executed one, or `to`/`migrations`). */
  down(options: MigrateFleetOptions = {}): Promise<ShardMigrationReport[]> {
    return this.#migrate('down', options);
  }

  /** The migrations not executed yet, per shard (MikroORM's `getPending()`). */
  pending(options: FleetRunOptions = {}): Promise<Map<ShardId, MigrationInfo[]>> {
    return this.#read('orm.migrator.pending()', options, id => this.#migrator(id).getPending());
  }

  /** The executed migrations, per shard, oldest first (MikroORM's `getExecuted()`). */
  executed(options: FleetRunOptions = {}): Promise<Map<ShardId, MigrationRow[]>> {
    return this.#read('orm.migrator.executed()', options, id => this.#migrator(id).getExecuted());
  }

  /**
   * Where every shard stands: its executed and pending migrations, whether any is pending, and the drift: shards
   * reading the same migrations that have executed different ones, grouped and named.
   */
  async status(options: FleetRunOptions = {}): Promise<FleetMigrationStatus> {
    const states = await this.#read('orm.migrator.status()', options, async id => {
      const migrator = this.#migrator(id);
      const executed = await migrator.getExecuted();
      const pending = await migrator.getPending();
      return shardState(id, migrationsSource(this.#orm.shard(id)).label, executed, pending);
    });
    return fleetStatus([...states.values()]);
  }

  async #migrate(method: 'up' | 'down', options: MigrateFleetOptions): Promise<ShardMigrationReport[]> {
    const operation = `orm.migrator.${method}()`;
    const { shards, concurrency, ...migrate } = options;
    const targets = fleetRunTargets(this.#orm.shardIds, { shards, concurrency }, operation);
    // Migrations write: read-only shards are left out, and naming one is refused.
    const ids = writableShards(this.#orm.fleet, targets.ids, operation, shards !== undefined);
    refuseSharedDatabases(this.#orm, ids, operation);
    const limit = targets.concurrency;
    ids.forEach(id => this.#migrator(id));
    const started = method === 'up' ? 'migrating' : 'reverting';
    const finished = method === 'up' ? 'migrated' : 'reverted';
    const progress = new Map<ShardId, { current: string | undefined; done: string[] }>();
    const outcomes = await runBounded(
      ids,
      async id => {
        const migrator = this.#migrator(id);
        const state = { current: undefined as string | undefined, done: [] as string[] };
        progress.set(id, state);
        const onStart = (event: MigrationInfo) => void (state.current = event.name);
        const onFinish = (event: MigrationInfo) => {
          state.current = undefined;
          state.done.push(event.name);
        };
        migrator.on(started, onStart).on(finished, onFinish);
        try {
          return await migrator[method](migrate);
        } finally {
          migrator.off(started, onStart).off(finished, onFinish);
        }
      },
      { concurrency: limit },
    );
    const report = outcomes.map(outcome => {
      const state = progress.get(outcome.shard);
      // MikroORM runs a shard's batch in one transaction unless told otherwise: a failure then keeps none of it.
      const kept = (id: ShardId) => {
        const { transactional, allOrNothing } = this.#orm.shard(id).config.get('migrations');
        return transactional !== false && allOrNothing !== false ? [] : (state?.done ?? []);
      };
      return reportOf(outcome, outcome.status === 'failed' ? kept(outcome.shard) : [], state?.current, ran => ran.map(m => m.name));
    });
    const failed = report.find(r => r.status === 'failed');
    if (failed) {
      throw new ShardedMigrationError(operation, failed.shard, failed.failedMigration, failed.error, report);
    }
    return report;
  }

  async #read<T>(operation: string, options: FleetRunOptions, task: (id: ShardId) => Promise<T>): Promise<Map<ShardId, T>> {
    const { ids, concurrency } = fleetRunTargets(this.#orm.shardIds, options, operation);
    refuseSharedDatabases(this.#orm, ids, operation);
    ids.forEach(id => this.#migrator(id));
    const outcomes = await runBounded(ids, task, { concurrency });
    const failure = outcomes.find(outcome => outcome.status === 'failed');
    if (failure) {
      throw new ShardedMigrationError(
        operation,
        failure.shard,
        undefined,
        failure.error,
        outcomes.map(outcome => reportOf(outcome, [], undefined, () => [])),
      );
    }
    const values = doneValues(outcomes);
    return new Map(ids.map((id, i) => [id, values[i]!]));
  }

  /** A shard's MikroORM migrator, or a clear error when the shard has no Migrator extension. */
  #migrator(id: ShardId): IMigrator {
    try {
      return this.#orm.shard(id).migrator;
    } catch (error) {
      if (error instanceof ShardingError) throw error;
      throw new ShardingError(
        'INVALID_OPTIONS',
        `Shard "${id}" has no migrator: register MikroORM's Migrator extension in the shared options, ` +
          "`extensions: [Migrator]` with `import { Migrator } from '@mikro-orm/migrations'` (installed at the version of @mikro-orm/core). Nothing was done.",
        { shard: id, cause: error },
      );
    }
  }
}

function reportOf<T>(
  outcome: ShardOutcome<T>,
  kept: readonly string[],
  failedMigration: string | undefined,
  names: (value: T) => string[],
): ShardMigrationReport {
  switch (outcome.status) {
    case 'done':
      return { shard: outcome.shard, status: 'done', migrations: names(outcome.value), ms: outcome.ms };
    case 'failed':
      return { shard: outcome.shard, status: 'failed', migrations: kept, failedMigration, error: outcome.error, ms: outcome.ms };
    default:
      return { shard: outcome.shard, status: 'skipped', migrations: [] };
  }
}
