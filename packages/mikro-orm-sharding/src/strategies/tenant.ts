import type { MikroORM } from '@mikro-orm/core';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import type { OnShardOpen } from '../fleet/fleet.ts';
import type { ShardOptions } from '../options.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { PerFleet } from './per-fleet.ts';
import type { ShardStrategy, StrategyContext } from './strategy.ts';

/**
 * How a tenant's shard is made: a function of the tenant id returning its shard options (over the shared ones) or a
 * connection URL, or a declarative form where `{tenant}` stands for the tenant id:
 * - `{ database }`: a database per tenant, a SQLite file path (`'data/{tenant}.db'`) or a PostgreSQL database name
 *   (`'app_{tenant}'`), created if missing;
 * - `{ schema }`: a PostgreSQL schema per tenant (`'t_{tenant}'`) in the shared database, created if missing.
 */
export type TenantTemplate = ((tenantId: string) => MaybePromise<ShardOptions | string>) | { readonly database: string } | { readonly schema: string };

/** What {@link TenantOptions.setup} is given: the new tenant's shard, connected for the first time. */
export interface TenantSetupArgs {
  /** The tenant's shard id (`tenant_acme`). */
  readonly id: ShardId;
  /** The tenant id (`acme`). */
  readonly tenantId: string;
  /** The shard's own MikroORM. */
  readonly orm: MikroORM;
}

/** Options of {@link tenant}. */
export interface TenantOptions {
  /** How a tenant's shard is made, the first time the tenant is used in this process. */
  readonly template: TenantTemplate;
  /**
   * Put before the tenant id to make its shard id (`tenant_acme`), so tenant shards cannot clash with other shards.
   * @default 'tenant_'
   */
  readonly prefix?: string;
  /**
   * Prepares a tenant's shard at its first connection in this process, before any query goes on and before the
   * fleet's `onShardOpen`: runs once per tenant however many requests arrive together.
   * @default create the database if missing (`orm.schema.ensureDatabase()`), the schema of the shard's `schema`
   * option if missing, then `orm.schema.update()` (of that schema only)
   */
  readonly setup?: (args: TenantSetupArgs) => MaybePromise<void>;
}

/** A tenant strategy. */
export interface TenantStrategy extends ShardStrategy {
  readonly kind: 'tenant';
  /** The shard id of a tenant (`tenant_acme`); throws `INVALID_SHARD_KEY` for an id that is not valid. */
  shardIdOf(tenantId: unknown): ShardId;
  /**
   * Registers a tenant's shard if this fleet does not know it yet (it is created at its first connection), and
   * resolves to its shard id: to know the existing tenants at startup, so that queries without the tenant key read
   * them all.
   */
  register(orm: ShardedMikroORM, tenantId: unknown): Promise<ShardId>;
}

/** Tenant ids: letters, digits, `_` and `-`, 1 to 63 characters (a PostgreSQL identifier's limit). */
const TENANT_ID = /^[A-Za-z0-9_-]{1,63}$/;
/** PostgreSQL's longest identifier, in bytes (names are ASCII here). */
const MAX_IDENTIFIER = 63;

/**
 * One shard per tenant, made on demand: the tenant key (`tenantId`) maps to the shard `<prefix><tenantId>`
 * (`tenant_acme`); the first time a tenant is used in a process, its shard is registered (`orm.addShard()`) from
 * `template`, and at its first connection its database or schema is created if missing and its tables brought up to
 * date (`setup`), once however many requests arrive together. Tenant ids are checked first: a bad one is refused
 * with `INVALID_SHARD_KEY` and nothing is created.
 *
 * Reads go to the tenant's shard too, so a tenant another process created is found; a tenant no one created gets
 * an empty shard. A query without the tenant key reads every tenant this process knows (see {@link
 * TenantStrategy.register}), or is refused with `requireShardKey`.
 *
 * @example
 * ```ts
 * const tenants = tenant({ template: { schema: 't_{tenant}' } });
 * shardBy: { Invoice: { key: 'tenantId', strategy: tenants } }
 * ```
 */
export function tenant(options: TenantOptions): TenantStrategy {
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions("tenant() takes an options object: tenant({ template: { database: 'app_{tenant}' } }).", options);
  }
  const { template, prefix = 'tenant_', setup = defaultSetup } = options;
  const form = templateForm(template);
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_]*$/.test(prefix)) {
    throw ShardingError.invalidOptions(`tenant() needs \`prefix\` to hold only letters, digits and \`_\`; got ${describe(prefix)}.`, prefix);
  }
  if (typeof setup !== 'function') {
    throw ShardingError.invalidOptions(`tenant() needs \`setup\` to be a function; got ${describe(setup)}.`, setup);
  }
  /** Registrations under way by tenant: concurrent first uses of a tenant register it once. */
  const registering = new PerFleet<Map<string, Promise<ShardId>>>(() => new Map());

  const tenantIdOf = (key: unknown, entity: string): string => {
    const text =
      typeof key === 'string' ? key : typeof key === 'bigint' || (typeof key === 'number' && Number.isSafeInteger(key) && key >= 0) ? String(key) : undefined;
    if (text === undefined || !TENANT_ID.test(text)) {
      throw ShardingError.invalidShardKey(entity, 'tenant', key, 'a tenant id is 1 to 63 letters, digits, `_` or `-` (or a whole number >= 0)');
    }
    return text;
  };

  const shardOptions = async (orm: ShardedMikroORM, tenantId: string, entity: string): Promise<ShardOptions | string> => {
    if (form === 'function') {
      return (template as (tenantId: string) => MaybePromise<ShardOptions | string>)(tenantId);
    }
    const pattern = (template as Record<string, string>)[form]!;
    const name = pattern.replaceAll('{tenant}', tenantId);
    const identifier = form === 'schema' || hasSchemas(orm.fleet.template());
    if (identifier && Buffer.byteLength(name) > MAX_IDENTIFIER) {
      throw ShardingError.invalidShardKey(
        entity,
        'tenant',
        tenantId,
        `its ${form} name ${describe(name)} is longer than PostgreSQL's ${MAX_IDENTIFIER} bytes; use a shorter tenant id or pattern`,
      );
    }
    return form === 'schema' ? { schema: name } : { dbName: name };
  };

  const ensure = (orm: ShardedMikroORM, key: unknown, entity: string): MaybePromise<ShardId> => {
    const tenantId = tenantIdOf(key, entity);
    const id = `${prefix}${tenantId}`;
    if (orm.fleet.has(id)) {
      return id;
    }
    const pending = registering.of(orm);
    let registration = pending.get(tenantId);
    if (!registration) {
      const onOpen: OnShardOpen = ({ orm: shard }) => setup({ id, tenantId, orm: shard });
      registration = (async () => {
        const own = await shardOptions(orm, tenantId, entity);
        // Another registration (an administrator's `addShard()`) may have come first: that shard stands.
        if (!orm.fleet.has(id)) {
          await orm.registerShard(id, own, onOpen);
        }
        return id;
      })().finally(() => pending.delete(tenantId));
      pending.set(tenantId, registration);
    }
    return registration;
  };

  return {
    kind: 'tenant',
    shardFor: (key, context: StrategyContext) => ensure(context.orm, key, context.entityName),
    shardIdOf(tenantId) {
      return `${prefix}${tenantIdOf(tenantId, 'tenant.shardIdOf()')}`;
    },
    register: async (orm, tenantId) => ensure(orm, tenantId, 'tenant.register()'),
    checkFleet(orm, owner) {
      if (form === 'schema' && !hasSchemas(orm.fleet.template())) {
        throw ShardingError.invalidOptions(`${owner}: tenant({ template: { schema } }) needs PostgreSQL (schemas); use { database } on this driver.`, template);
      }
    },
  };
}

function templateForm(template: unknown): 'function' | 'database' | 'schema' {
  if (typeof template === 'function') {
    return 'function';
  }
  if (template !== null && typeof template === 'object') {
    const keys = Object.keys(template);
    const form = keys[0];
    if (keys.length === 1 && (form === 'database' || form === 'schema')) {
      const pattern = (template as Record<string, unknown>)[form];
      if (typeof pattern === 'string' && pattern.includes('{tenant}')) {
        return form;
      }
      throw ShardingError.invalidOptions(`tenant() needs \`template.${form}\` to be a name holding \`{tenant}\`; got ${describe(pattern)}.`, pattern);
    }
  }
  throw ShardingError.invalidOptions(
    `tenant() needs \`template\`: (tenantId) => shard options, { database: 'app_{tenant}' } or { schema: 't_{tenant}' }; got ${describe(template)}.`,
    template,
  );
}

async function defaultSetup({ orm }: TenantSetupArgs): Promise<void> {
  await orm.schema.ensureDatabase();
  const schema = orm.config.get('schema');
  if (schema === undefined) {
    await orm.schema.update();
    return;
  }
  // Creates the schema if missing; only this tenant's: the others' tables, which this shard does not map, stay.
  await orm.schema.update({ schema });
}

/** Whether the driver has schemas (PostgreSQL): its names are identifiers, at most 63 bytes. */
function hasSchemas(orm: MikroORM): boolean {
  return orm.em.getPlatform().getDefaultSchemaName() !== undefined;
}
