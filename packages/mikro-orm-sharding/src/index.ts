export { ShardedMikroORM, type Routing } from './ShardedMikroORM.ts';
export { ShardedEntityManager, type ShardOption } from './ShardedEntityManager.ts';
export type { ShardedEntityRepository, ShardedRepository } from './repository.ts';
export { ShardedRequestContext } from './fleet/request-context.ts';
export { ShardedSchema } from './ShardedSchema.ts';
export { ShardingError, type ShardingErrorCode, type ShardingErrorDetails } from './errors/errors.ts';
export { shardFailureOf, type FailedShard, type ShardFailure } from './errors/shard-failure.ts';
export { partialFailuresOf, type OnShardError, type PartialFailures, type ShardErrorOption } from './read/partial.ts';
export type { CircuitBreakerOptions, CircuitState, CircuitStateChange, ShardFailureInfo, ShardHealth } from './fleet/circuit-breaker.ts';
export {
  defineShardingConfig,
  type Binds,
  type EntityList,
  type FleetEntity,
  type ShardedMikroORMOptions,
  type ShardIdsOf,
  type ShardMap,
  type ShardOptions,
} from './options.ts';
export type { BroadcastDeclaration, ParentDeclaration, ShardByDeclaration, ShardByOptions, ShardKeyDeclaration } from './routing/shard-by.ts';
export { copyBroadcastRows, type CopyBroadcastRowsOptions } from './broadcast/copy-rows.ts';
export type { BucketedStrategy, KeyRange, ShardStrategy, StrategyContext } from './strategies/strategy.ts';
export { hash, type HashOptions, type HashStrategy } from './strategies/hash.ts';
export { jump, type JumpOptions, type JumpStrategy } from './strategies/jump.ts';
export { range, type RangeBound, type RangeEntry, type RangeStrategy } from './strategies/range.ts';
export { directory, type DirectoryOptions, type DirectoryStrategy } from './strategies/directory.ts';
export { tenant, type TenantOptions, type TenantSetupArgs, type TenantStrategy, type TenantTemplate } from './strategies/tenant.ts';
export { evenSpread, rebalance, type BucketDirectory, type BucketMove, type BucketTableOptions } from './strategies/bucket-directory.ts';
export { ShardDirectoryEntry } from './strategies/directory-table.ts';
export { canonicalKey } from './strategies/canonical-key.ts';
export { idGenerator, IdGenerator, type DecodedId, type IdGeneratorOptions } from './strategies/ids.ts';
export { Int64StringType } from './strategies/int64-string-type.ts';
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
export { md5Suffix, tableSuffix, type TableSuffixOptions, type TableSuffixStrategy } from './strategies/table-suffix.ts';
export { sharedTablesShard, tableSuffixShard, type SharedTablesShardOptions, type TableSuffixShardOptions } from './table-suffix/table-suffix-shard.ts';
export { reflectEntities, type ReflectEntitiesOptions, type ReflectedEntities, type ReflectedEntity } from './introspection/reflect-entities.ts';
export type { EntityDefinition, PropertyCall, PropertyDefinition, SkippedTable } from './introspection/entity-definitions.ts';
export { generateEntitySource, type GenerateEntitySourceOptions } from './introspection/entity-source.ts';
