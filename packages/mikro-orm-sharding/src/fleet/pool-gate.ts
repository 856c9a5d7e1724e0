import type { IDatabaseDriver } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { isUnavailable } from '../errors/unavailable.ts';
import { withPoolCreatedHook } from '../mikro-internals.ts';
import type { ShardOptions } from '../options.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { isPostgresDriver } from './connection-defaults.ts';
import { reclaimBrokenClients } from './pool-leaks.ts';
import type { FleetHealth } from './health.ts';

/**
 * Every query, transaction and fast-path statement of a PostgreSQL shard first takes a connection from the shard's
 * `pg` pool (`pool.connect()`; Kysely and `pool.query()` both go through it), whoever asked: the sharded entity
 * manager, `em.on(shard)`, `orm.shard(id)`, the schema tools. So the shard's circuit breaker sits there: it sees
 * whether connections can be made, and while the circuit is open it refuses them without touching the network.
 */

type ConnectCallback = (error: unknown, client?: unknown, release?: unknown) => void;

/**
 * Each PostgreSQL shard's options with its pool gated by its breaker and taking back broken connections (see
 * pool-leaks.ts); other drivers' options as they are.
 */
export function withHealthGates<D extends IDatabaseDriver>(configs: Map<ShardId, ShardOptions<D>>, health: FleetHealth): Map<ShardId, ShardOptions<D>> {
  for (const [shard, options] of configs) {
    configs.set(shard, withPoolGate<D>(options, health.breaker(shard)));
  }
  return configs;
}

/**
 * A shard's options whose pools (the primary's and each read replica's) report to `breaker`. Pools given ready-made
 * (a Kysely instance, a dialect or a function as `driverOptions`) are the application's own and stay ungated.
 */
export function withPoolGate<D extends IDatabaseDriver>(options: ShardOptions<D>, breaker: CircuitBreaker): ShardOptions<D> {
  if (!isPostgresDriver(options.driver)) {
    return options;
  }
  const gate = (pool: object) => {
    gatePool(pool, breaker);
    reclaimBrokenClients(pool);
  };
  const gated = <T>(driverOptions: T): T =>
    driverOptions === undefined || isPlainObject(driverOptions) ? (withPoolCreatedHook((driverOptions ?? {}) as object, gate) as T) : driverOptions;
  const replicas = options.replicas?.map(replica =>
    replica.driverOptions === undefined ? replica : { ...replica, driverOptions: gated(replica.driverOptions) },
  );
  return { ...options, driverOptions: gated(options.driverOptions), ...(replicas ? { replicas } : {}) } as ShardOptions<D>;
}

/**
 * Wraps a `pg` Pool's `connect()` (callback and promise forms) so that every attempt asks the breaker first and
 * reports how it went. A failure that says nothing about reachability (a wrong password, an unknown database) means
 * the server answered: the shard is reachable.
 */
export function gatePool(pool: object, breaker: CircuitBreaker): void {
  const target = pool as { connect?: (callback?: ConnectCallback) => unknown };
  const connect = target.connect;
  if (typeof connect !== 'function') {
    return;
  }
  target.connect = function gatedConnect(this: unknown, callback?: ConnectCallback): unknown {
    const admission = breaker.admit();
    if ('refused' in admission) {
      if (callback) {
        process.nextTick(callback, admission.refused);
        return undefined;
      }
      return Promise.reject(admission.refused);
    }
    const { probe } = admission;
    const reported = (done: ConnectCallback): ConnectCallback => {
      return (error, client, release) => {
        if (error && isUnavailable(error)) {
          breaker.failed(error, probe);
        } else {
          breaker.succeeded(probe);
        }
        done(error, client, release);
      };
    };
    if (callback) {
      return connect.call(this, reported(callback));
    }
    return new Promise((resolve, reject) => {
      connect.call(
        this,
        reported((error, client) => (error ? reject(error) : resolve(client))),
      );
    });
  };
}

function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
