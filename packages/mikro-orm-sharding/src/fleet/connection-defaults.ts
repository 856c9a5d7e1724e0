import type { IDatabaseDriver } from '@mikro-orm/core';
import type { ShardOptions } from '../options.ts';

/**
 * Timeouts every PostgreSQL shard gets unless its options set them, in `driverOptions` as `pg` names them: a shard
 * that accepts connections but never answers, or a statement stuck behind a lock, then fails by name instead of
 * hanging `init()`, every query that reaches it, and `close()`. `0` turns one off.
 */
export const POSTGRES_TIMEOUTS: Readonly<{ connectionTimeoutMillis: number; statement_timeout: number }> = Object.freeze({
  /** Connecting, and waiting for a free pooled connection (`pg` and `pg-pool`). */
  connectionTimeoutMillis: 10_000,
  /** Each statement, enforced by the server (sent as the `statement_timeout` setting when connecting). */
  statement_timeout: 60_000,
});

/**
 * A shard's options with {@link POSTGRES_TIMEOUTS} filled in when its driver is MikroORM's PostgreSQL driver (or a
 * subclass of it), for the primary and each read replica. It must happen before `MikroORM.init()`: each
 * connection copies its options when it is made. A Kysely instance, a dialect or a function given as
 * `driverOptions` is left alone: it owns its pool.
 */
export function withConnectionDefaults<D extends IDatabaseDriver>(options: ShardOptions<D>): ShardOptions<D> {
  if (!isPostgresDriver(options.driver)) {
    return options;
  }
  const own = withTimeouts(options.driverOptions);
  const replicas = options.replicas?.map(replica =>
    replica.driverOptions === undefined ? replica : { ...replica, driverOptions: withTimeouts(replica.driverOptions) },
  );
  return { ...options, driverOptions: own, ...(replicas ? { replicas } : {}) } as ShardOptions<D>;
}

function withTimeouts<T>(driverOptions: T): T {
  if (
    driverOptions !== undefined &&
    (driverOptions === null || typeof driverOptions !== 'object' || Object.getPrototypeOf(driverOptions) !== Object.prototype)
  ) {
    return driverOptions;
  }
  return { ...POSTGRES_TIMEOUTS, ...driverOptions } as T;
}

/** MikroORM's driver classes keep their names (MikroORM itself relies on class names), so the chain tells. */
export function isPostgresDriver(driver: unknown): boolean {
  for (let proto = typeof driver === 'function' ? (driver as { prototype?: object }).prototype : undefined; proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor?.name === 'PostgreSqlDriver') {
      return true;
    }
  }
  return false;
}
