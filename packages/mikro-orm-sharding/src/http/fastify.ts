import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { ShardId } from '../choosers.ts';
import { checkContextOptions, enterResolved, type AnyShardedMikroORM, type ShardedContextOptions } from './request-scope.ts';

/** Options of {@link fastifyShardedContext}: the fleet, and optionally a `shardResolver` given Fastify's request. */
export interface FastifyShardedContextOptions<Id extends string = ShardId> extends ShardedContextOptions<FastifyRequest, Id> {
  /** The fleet whose `orm.em` each request gets its own of. */
  readonly orm: AnyShardedMikroORM<Id>;
}

/**
 * A Fastify (5) plugin: an `onRequest` hook runs each request in its own request context of the fleet, so that
 * `orm.em` in the route handlers is the request's own sharded entity manager (pinned to a shard when `shardResolver`
 * names one). It applies to the whole application, not only the plugin's scope (as `fastify-plugin` would make it).
 * A failing `shardResolver` fails the request through Fastify's error handling.
 *
 * @example
 * ```ts
 * await app.register(fastifyShardedContext, { orm, shardResolver: request => request.headers['x-tenant'] as string });
 * ```
 */
export const fastifyShardedContext: FastifyPluginCallback<FastifyShardedContextOptions<string>> = Object.assign(
  (instance: Parameters<FastifyPluginCallback>[0], options: FastifyShardedContextOptions<string>, done: (error?: Error) => void) => {
    try {
      checkContextOptions('fastifyShardedContext', options?.orm, options);
    } catch (error) {
      done(error as Error);
      return;
    }
    instance.addHook('onRequest', (request, _reply, next) => {
      void enterResolved(options.orm, request, options, next, error => next(error as Error));
    });
    done();
  },
  {
    // What `fastify-plugin` sets: the hook applies outside the plugin's own encapsulated scope.
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'mikro-orm-sharding',
  },
);
