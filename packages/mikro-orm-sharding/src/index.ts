export { ShardedMikroORM, type Routing } from './ShardedMikroORM.ts';
export { ShardedEntityManager, type ShardOption } from './ShardedEntityManager.ts';
export type { ShardedEntityRepository, ShardedRepository } from './repository.ts';
export { ShardedRequestContext } from './fleet/request-context.ts';
export { ShardedSchema } from './ShardedSchema.ts';
export { ShardingError, type ShardingErrorCode, type ShardingErrorDetails } from './errors/errors.ts';
export { shardFailureOf, type FailedShard, type ShardFailure } from './errors/shard-failure.ts';
export {
  defineShardingConfig,
  type EntityList,
  type FleetEntity,
  type ShardedMikroORMOptions,
  type ShardIdsOf,
  type ShardMap,
  type ShardOptions,
} from './options.ts';
export type {
  ChosenShard,
  IdChooser,
  IdChooserArgs,
  MaybePromise,
  QueryChooser,
  QueryChooserArgs,
  ShardChooser,
  ShardChooserArgs,
  ShardId,
} from './choosers.ts';
export { ShardedMigrator, type CreateFleetMigrationOptions, type CreatedMigration, type MigrateFleetOptions } from './migrations/ShardedMigrator.ts';
export { ShardedMigrationError } from './migrations/errors.ts';
export type { FleetMigrationStatus, MigrationDrift, ShardMigrationReport, ShardMigrationState } from './migrations/report.ts';
export type { FleetRunOptions } from './fleet/run-bounded.ts';
export type { ShardedTransactionOptions, TransactionMode, TwoPhaseCommitOptions } from './transactions/settings.ts';
export type { RecoveryReport } from './transactions/recover.ts';
export { shardConfigsForCli, type ShardCliConfigs } from './migrations/cli-config.ts';
export {
  compareShardSchemas,
  type CompareShardSchemasOptions,
  type ShardSchemaComparison,
  type ShardSchemaDifference,
  type TableSchemaDifference,
} from './introspection/compare-schemas.ts';
