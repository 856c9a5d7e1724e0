import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { checkContextOptions, enterResolved, type AnyShardedMikroORM, type ShardedContextOptions } from './request-scope.ts';

/** Options of {@link withShardedContext}. */
export interface NodeShardedContextOptions<
  Request extends IncomingMessage,
  Response extends ServerResponse,
  Id extends string = ShardId,
> extends ShardedContextOptions<Request, Id> {
  /**
   * Answers a request whose `shardResolver` failed (threw, rejected, or named no shard); the listener is not called.
   * @default a `500 Internal Server Error` with no body detail
   */
  readonly onError?: (error: unknown, request: Request, response: Response) => void;
}

/**
 * Wraps a Node `http` request listener so that each request runs in its own request context of the fleet: inside
 * the listener, `orm.em` is the request's own sharded entity manager (pinned to a shard when `shardResolver` names
 * one). What the listener returns or throws is passed on as it is.
 *
 * @example
 * ```ts
 * createServer(withShardedContext(orm, async (req, res) => {
 *   res.end(JSON.stringify(await orm.em.findOne(Author, 1)));
 * })).listen(3000);
 * ```
 */
export function withShardedContext<Id extends string, Request extends IncomingMessage = IncomingMessage, Response extends ServerResponse = ServerResponse>(
  orm: AnyShardedMikroORM<Id>,
  listener: (request: Request, response: Response) => unknown,
  options: NodeShardedContextOptions<Request, Response, NoInfer<Id>> = {},
): (request: Request, response: Response) => unknown {
  checkContextOptions('withShardedContext()', orm, options, ['onError']);
  if (typeof listener !== 'function') {
    throw ShardingError.invalidOptions(`withShardedContext() wraps a request listener, a function; got ${describe(listener)}.`, listener);
  }
  const fail = options.onError ?? internalServerError;
  return (request, response) =>
    enterResolved(
      orm,
      request,
      options,
      () => listener(request, response),
      error => fail(error, request, response),
    );
}

function internalServerError(_error: unknown, _request: IncomingMessage, response: ServerResponse): void {
  if (!response.headersSent) {
    response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
  }
  response.end('Internal Server Error');
}
