import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkContextOptions, enterResolved, type AnyShardedMikroORM, type ShardedContextOptions } from './request-scope.ts';

/**
 * Middleware for Express 5 and other Connect-style frameworks: each request runs in its own request context
 * of the fleet, so that `orm.em` in the handlers after it is the request's own sharded entity manager (pinned to a
 * shard when `shardResolver` names one). A failing `shardResolver` is passed to `next(error)`. Register it after
 * the body parsers and before anything that uses the entity manager, as MikroORM advises for its `RequestContext`.
 *
 * @example
 * ```ts
 * app.use(express.json());
 * app.use(shardedContext(orm, { shardResolver: req => req.get('x-tenant') }));
 * ```
 */
export function shardedContext<Id extends string, Request extends IncomingMessage = IncomingMessage>(
  orm: AnyShardedMikroORM<Id>,
  options: ShardedContextOptions<Request, NoInfer<Id>> = {},
): (request: Request, response: ServerResponse, next: (error?: unknown) => void) => void {
  checkContextOptions('shardedContext()', orm, options);
  return (request, _response, next) => {
    void enterResolved(orm, request, options, next, next);
  };
}
