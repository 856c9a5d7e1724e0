import { SchemaComparator, type SchemaDifference, type SqlEntityManager, type SqlSchemaGenerator } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { doneValues, fleetRunTargets, runBounded, type FleetRunOptions } from '../fleet/run-bounded.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { throwFirstFailure } from '../fleet/settle.ts';
import { introspectTables } from './introspect.ts';

/** Options of {@link compareShardSchemas}. */
export interface CompareShardSchemasOptions extends FleetRunOptions {
  /**
   * The shard every other one is compared with: the one the entities were written (or generated) from.
   * @default the first shard
   */
  readonly reference?: ShardId;
  /** Tables to leave out, besides each shard's `schemaGenerator.skipTables` and MikroORM's migrations table. */
  readonly skipTables?: readonly (string | RegExp)[];
}

/** How one shard's tables differ from the reference shard's. */
export interface ShardSchemaDifference {
  readonly shard: ShardId;
  /** Tables the reference has and this shard lacks. */
  readonly missingTables: readonly string[];
  /** Tables this shard has and the reference lacks. */
  readonly extraTables: readonly string[];
  /** Tables on both whose columns, indexes or foreign keys differ. */
  readonly changedTables: readonly TableSchemaDifference[];
  /** The SQL that would make this shard's schema the reference's (MikroORM's schema diff); review it before running it. */
  readonly sql: string;
}

/** How one table differs on a shard. */
export interface TableSchemaDifference {
  readonly table: string;
  /** Columns the reference's table has and this shard's lacks. */
  readonly missingColumns: readonly string[];
  /** Columns this shard's table has and the reference's lacks. */
  readonly extraColumns: readonly string[];
  /** Columns on both that differ, with what differs (`type`, `nullable`, `default`, ...). */
  readonly changedColumns: readonly { readonly column: string; readonly changes: readonly string[] }[];
  /** Indexes, checks or foreign keys that differ, by name. */
  readonly otherChanges: readonly string[];
}

/** The answer of {@link compareShardSchemas}. */
export interface ShardSchemaComparison {
  readonly reference: ShardId;
  /** The shards whose schema is the reference's. */
  readonly same: readonly ShardId[];
  /** The shards whose schema differs, with how. */
  readonly differing: readonly ShardSchemaDifference[];
  /** One line per differing shard, or a line saying all are the same. */
  readonly summary: string;
}

/**
 * Reads every shard's tables from the database (MikroORM's schema introspection, no entities needed) and reports the
 * shards whose schema differs from the reference shard's: missing and extra tables, columns, indexes and foreign
 * keys, and the SQL that would align each. For databases that existed before the fleet: check that the entities of
 * one shard fit every shard before routing to them.
 *
 * @example
 * ```ts
 * const { differing, summary } = await compareShardSchemas(orm, { reference: 's0' });
 * ```
 */
export async function compareShardSchemas(orm: ShardedMikroORM, options: CompareShardSchemasOptions = {}): Promise<ShardSchemaComparison> {
  const reference = options.reference ?? orm.shardIds[0]!;
  const { ids, concurrency } = fleetRunTargets(
    orm.shardIds,
    { ...options, shards: options.shards && [reference, ...options.shards.filter(id => id !== reference)] },
    'compareShardSchemas()',
  );
  if (!ids.includes(reference)) {
    fleetRunTargets(orm.shardIds, { shards: [reference] }, 'compareShardSchemas() `reference`');
  }
  const outcomes = await runBounded(ids, id => introspectTables(orm.shard(id), options.skipTables ?? []), { concurrency });
  throwFirstFailure('compareShardSchemas', outcomes);
  const schemas = new Map(ids.map((id, i) => [id, doneValues(outcomes)[i]!]));
  const target = schemas.get(reference)!;
  const same: ShardId[] = [];
  const differing: ShardSchemaDifference[] = [];
  for (const id of ids) {
    if (id === reference) continue;
    const shard = orm.shard(id);
    const em = shard.em.fork() as SqlEntityManager;
    const diff = new SchemaComparator(em.getPlatform()).compare(schemas.get(id)!, target);
    // Every shard has a SQL driver (checked at init), so its schema generator is MikroORM's SQL one.
    const sql = (shard.schema as unknown as SqlSchemaGenerator).diffToSQL(diff, { wrap: false, safe: false, dropTables: true });
    const difference = differenceOf(id, diff, sql.trim());
    if (difference.missingTables.length + difference.extraTables.length + difference.changedTables.length === 0 && difference.sql === '') same.push(id);
    else differing.push(difference);
  }
  const summary =
    differing.length === 0 ? `Every shard has the schema of "${reference}" (${ids.join(', ')}).` : differing.map(d => `${d.shard}: ${describe(d)}`).join('\n');
  return { reference, same: [reference, ...same], differing, summary };
}

function differenceOf(shard: ShardId, diff: SchemaDifference, sql: string): ShardSchemaDifference {
  const changedTables = Object.values(diff.changedTables).map(table => ({
    table: table.name,
    missingColumns: Object.keys(table.addedColumns),
    extraColumns: Object.keys(table.removedColumns),
    changedColumns: Object.values(table.changedColumns).map(change => ({ column: change.column.name, changes: [...change.changedProperties] })),
    otherChanges: [
      ...Object.keys(table.renamedColumns).map(name => `renamed column ${name}`),
      ...Object.keys({ ...table.addedIndexes, ...table.changedIndexes, ...table.removedIndexes, ...table.renamedIndexes }).map(name => `index ${name}`),
      ...Object.keys({ ...table.addedChecks, ...table.changedChecks, ...table.removedChecks }).map(name => `check ${name}`),
      ...Object.keys({ ...table.addedForeignKeys, ...table.changedForeignKeys, ...table.removedForeignKeys }).map(name => `foreign key ${name}`),
    ],
  }));
  return {
    shard,
    missingTables: Object.values(diff.newTables).map(table => table.name),
    extraTables: Object.values(diff.removedTables).map(table => table.name),
    changedTables: changedTables.filter(t => t.missingColumns.length + t.extraColumns.length + t.changedColumns.length + t.otherChanges.length > 0),
    sql,
  };
}

function describe(d: ShardSchemaDifference): string {
  const parts = [
    d.missingTables.length > 0 ? `missing tables ${d.missingTables.join(', ')}` : '',
    d.extraTables.length > 0 ? `extra tables ${d.extraTables.join(', ')}` : '',
    ...d.changedTables.map(t =>
      [
        t.missingColumns.length > 0 ? `${t.table} lacks ${t.missingColumns.join(', ')}` : '',
        t.extraColumns.length > 0 ? `${t.table} has extra ${t.extraColumns.join(', ')}` : '',
        ...t.changedColumns.map(c => `${t.table}.${c.column} differs in ${c.changes.join(', ')}`),
        t.otherChanges.length > 0 ? `${t.table}: ${t.otherChanges.join(', ')} differ` : '',
      ]
        .filter(Boolean)
        .join('; '),
    ),
  ];
  return parts.filter(Boolean).join('; ') || 'differs (see its sql)';
}
