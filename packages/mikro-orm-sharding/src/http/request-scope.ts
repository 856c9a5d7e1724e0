import type { IDatabaseDriver } from '@mikro-orm/core';
import type { ChosenShard, MaybePromise, ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { enterFleetContext } from '../fleet/request-context.ts';
import { ShardedEntityManager } from '../ShardedEntityManager.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

/** Options of the request-scope middleware: Node's `http`, Express (and Connect-style frameworks), Fastify. */
export interface ShardedContextOptions<Request, Id extends string = ShardId> {
  /**
   * Pins the request to one shard (a tenant's database, as Rails' shard selector does): within the request, `orm.em`
   * sends every call that names no `{ shard }`, and reaches no bound or already placed entity, to that shard, without
   * asking the choosers. Return `undefined` (or `null`) to leave the request to the choosers. It may be async (a
   * lookup in a directory); what it throws fails the request as it is (throw your framework's 404 for an unknown
   * tenant). An id that is not a shard fails the request with `UNKNOWN_SHARD`.
   *
   * @default none: every request is routed by the choosers
   * @example
   * ```ts
   * shardResolver: req => tenants.get(String(req.headers['x-tenant']))
   * ```
   */
  readonly shardResolver?: (request: Request) => MaybePromise<ChosenShard<Id> | null | undefined>;
}

/** A fleet of any driver, with its typed shard ids. */
export type AnyShardedMikroORM<Id extends string = ShardId> = ShardedMikroORM<IDatabaseDriver, Id>;

/**
 * Checks a middleware's fleet and options when the middleware is made, so that a mistake fails at startup with
 * `INVALID_OPTIONS` instead of failing every request with a `TypeError`.
 */
export function checkContextOptions(owner: string, orm: unknown, options: unknown, functions: readonly string[] = []): void {
  if (!((orm as { em?: unknown } | null | undefined)?.em instanceof ShardedEntityManager)) {
    throw ShardingError.invalidOptions(`${owner} needs the fleet, a ShardedMikroORM (from ShardedMikroORM.init()); got ${describe(orm)}.`, orm);
  }
  if (options === null || typeof options !== 'object') {
    throw ShardingError.invalidOptions(`${owner} takes an options object ({ shardResolver }); got ${describe(options)}.`, options);
  }
  for (const name of ['shardResolver', ...functions]) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined && typeof value !== 'function') {
      throw ShardingError.invalidOptions(`\`${name}\` of ${owner} must be a function; got ${describe(value)}.`, value);
    }
  }
}

/**
 * The shard `shardResolver` pins a request to (undefined: none), checked; a promise when the resolver is async.
 * Throws (or rejects with) the resolver's own error, or `UNKNOWN_SHARD`.
 */
export function resolveShard<Request, Id extends string>(
  orm: AnyShardedMikroORM<Id>,
  request: Request,
  options: ShardedContextOptions<Request, Id>,
): ShardId | undefined | Promise<ShardId | undefined> {
  const resolver = options.shardResolver;
  if (resolver === undefined) {
    return undefined;
  }
  const shard = resolver(request);
  return shard instanceof Promise ? shard.then(id => checkedPin(orm, id)) : checkedPin(orm, shard);
}

/**
 * The building block of the middleware, for any other framework: resolves the request's shard, then runs `next` in a
 * new request context pinned to it. Resolves to (or returns, when the resolver is synchronous) what `next` returns.
 *
 * @example
 * ```ts
 * // Koa
 * app.use((ctx, next) => runInRequestContext(orm, ctx.req, next, { shardResolver }));
 * ```
 */
export function runInRequestContext<Request, Id extends string, T>(
  orm: AnyShardedMikroORM<Id>,
  request: Request,
  next: () => T,
  options: ShardedContextOptions<Request, NoInfer<Id>> = {},
): T | Promise<T> {
  checkContextOptions('runInRequestContext()', orm, options);
  return enterResolved(orm, request, options, next, error => {
    throw error;
  });
}

/**
 * Resolves the request's shard, then runs `next` in a request context pinned to it; when the resolver fails, `fail`
 * answers instead and `next` is not called. What `next` throws is not `fail`'s: it passes through as it is.
 */
export function enterResolved<Request, T>(
  orm: AnyShardedMikroORM,
  request: Request,
  options: ShardedContextOptions<Request, string>,
  next: () => T,
  fail: (error: unknown) => T,
): T | Promise<T> {
  let shard: ReturnType<typeof resolveShard>;
  try {
    shard = resolveShard(orm, request, options);
  } catch (error) {
    return fail(error);
  }
  return shard instanceof Promise ? shard.then(id => enterFleetContext(orm, id, next), fail) : enterFleetContext(orm, shard, next);
}

function checkedPin(orm: AnyShardedMikroORM, shard: unknown): ShardId | undefined {
  if (shard === undefined || shard === null) {
    return undefined;
  }
  if (!orm.fleet.has(shard)) {
    throw orm.fleet.notRegistered(shard, { source: 'shardResolver' });
  }
  return shard;
}
