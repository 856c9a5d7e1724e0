import type { ShardedMikroORM } from './ShardedMikroORM.ts';
import { FLEET_CONCURRENCY, runBounded } from './fleet/run-bounded.ts';
import { throwFirstFailure } from './fleet/settle.ts';
import { writableShards } from './routing/read-only.ts';

/** The options of MikroORM's schema generator methods, whatever the driver. */
type SchemaOptions = Record<string, unknown>;

/**
 * MikroORM's schema generator, run on every shard in parallel. A failure names its shard and the shards that
 * already succeeded (schema changes are not atomic across shards). Read-only shards (`readOnly: true`) are left
 * alone by everything but `getCreateSchemaSQL()`.
 */
export class ShardedSchema {
  readonly #orm: ShardedMikroORM;

  /** @internal Use `orm.schema`. */
  constructor(orm: ShardedMikroORM) {
    this.#orm = orm;
  }

  /** Creates the schema on every shard. */
  async create(options?: SchemaOptions): Promise<void> {
    await this.#each('schema.create', id => this.#orm.shard(id).schema.create(options));
  }

  /** Updates every shard's schema to match the entities. */
  async update(options?: SchemaOptions): Promise<void> {
    await this.#each('schema.update', id => this.#orm.shard(id).schema.update(options));
  }

  /** Drops the schema on every shard. */
  async drop(options?: SchemaOptions): Promise<void> {
    await this.#each('schema.drop', id => this.#orm.shard(id).schema.drop(options));
  }

  /** Drops and re-creates the schema on every shard. */
  async refresh(options?: SchemaOptions): Promise<void> {
    await this.#each('schema.refresh', id => this.#orm.shard(id).schema.refresh(options));
  }

  /** Deletes every row of every table on every shard, keeping the schema. */
  async clear(options?: SchemaOptions): Promise<void> {
    await this.#each('schema.clear', id => this.#orm.shard(id).schema.clear(options));
  }

  /** Creates each shard's database if it does not exist; true when any was created. */
  async ensureDatabase(options?: SchemaOptions): Promise<boolean> {
    const created = await this.#each('schema.ensureDatabase', id => this.#orm.shard(id).schema.ensureDatabase(options));
    return created.some(Boolean);
  }

  /** The SQL that `create()` would run, per shard. */
  async getCreateSchemaSQL(options?: SchemaOptions): Promise<Map<string, string>> {
    const sql = await this.#each('schema.getCreateSchemaSQL', id => this.#orm.shard(id).schema.getCreateSchemaSQL(options), false);
    return new Map(this.#orm.shardIds.map((id, i) => [id, sql[i]!]));
  }

  /** Schema changes commit per shard: on a failure, every shard that finished a change is reported as changed. */
  // Bounded: a registry of thousands of shards must not open them all, and run DDL on all, at the same moment.
  // Every shard is attempted, as a failure on one must not leave the others half-known.
  async #each<T>(operation: string, task: (id: string) => Promise<T>, changes = true): Promise<T[]> {
    const ids = changes ? writableShards(this.#orm.fleet, this.#orm.shardIds, operation, false) : this.#orm.shardIds;
    const outcomes = await runBounded(ids, task, { concurrency: FLEET_CONCURRENCY, keepGoing: true });
    throwFirstFailure(operation, outcomes, changes);
    return outcomes.map(outcome => (outcome as { readonly value: T }).value);
  }
}
