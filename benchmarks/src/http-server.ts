// One server of the HTTP benchmark (src/http.ts), in a process of its own so that the load generator does not share
// its event loop: `sharded` (this library's middleware, each request pinned to a tenant's shard) or `plain` (one
// database, MikroORM's own RequestContext), on Node's http, Express or Fastify, with the same route. It fills its
// databases, listens on loopback, tells the parent its port over IPC, and exits when the parent goes away.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineEntity, MikroORM, p, RequestContext, type EntityManager, type Options } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { SqliteDriver } from '@mikro-orm/sqlite';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { fastifyShardedContext } from 'mikro-orm-sharding/fastify';
import { shardedContext, withShardedContext } from 'mikro-orm-sharding/http';

export type Framework = 'node' | 'express' | 'fastify';

/** What the parent tells a server, as JSON in argv[2]. */
export interface ServerConfig {
  readonly system: 'sharded' | 'plain';
  readonly framework: Framework;
  readonly driver: 'sqlite' | 'postgresql';
  /** One database per shard (one for plain): `{ dbName }` or `{ clientUrl }`. */
  readonly databases: readonly Partial<Options>[];
  readonly rows: number;
}

const AuthorSchema = defineEntity({
  name: 'Author',
  properties: { id: p.integer().primary().autoincrement(false), name: p.string(), born: p.integer() },
});
class Author extends AuthorSchema.class {}
AuthorSchema.setClass(Author);

/** The tenant every benchmark request names (src/http.ts sends it), and the shard it lives on. */
const TENANT = 'acme';
const TENANT_SHARD = 's1';

const config = JSON.parse(process.argv[2]!) as ServerConfig;
const shared: Partial<Options> = {
  driver: config.driver === 'sqlite' ? SqliteDriver : PostgreSqlDriver,
  entities: [Author],
  debug: false,
  ...(config.driver === 'postgresql' ? { pool: { min: 1, max: 4 } } : {}),
};

/** Rows 1..rows on every database: the tenant's shard holds what the plain database holds. */
async function fill(em: EntityManager): Promise<void> {
  for (let id = 1; id <= config.rows; id++) em.create(Author, { id, name: `author ${id}`, born: 1900 + (id % 100) });
  await em.flush();
}

type Handler = (id: number) => Promise<unknown>;
let route: Handler;
let close: () => Promise<void>;
let listen: (handler: Handler) => Promise<number>;

if (config.system === 'sharded') {
  const shards = Object.fromEntries(config.databases.map((db, i) => [`s${i}`, db]));
  const orm = await ShardedMikroORM.init({ ...shared, shards, shardChooser: () => TENANT_SHARD } as never);
  await orm.schema.refresh();
  for (const id of orm.shardIds) await fill(orm.shard(id).em.fork());
  route = id => orm.em.findOne(Author, id);
  close = () => orm.close();
  const shardResolver = (request: { headers: IncomingMessage['headers'] }) => (request.headers['x-tenant'] === TENANT ? TENANT_SHARD : undefined);
  listen = handler =>
    serve(
      handler,
      listener => withShardedContext(orm, listener, { shardResolver }),
      app => app.use(shardedContext(orm, { shardResolver })),
      app => app.register(fastifyShardedContext, { orm, shardResolver }),
    );
} else {
  const orm = await MikroORM.init({ ...shared, ...config.databases[0] } as Options);
  await orm.schema.refresh();
  await fill(orm.em.fork());
  route = id => orm.em.findOne(Author, id);
  close = () => orm.close();
  listen = handler =>
    serve(
      handler,
      listener => (req, res) => RequestContext.create(orm.em, () => listener(req, res)),
      app => app.use((_req, _res, next) => RequestContext.create(orm.em, next)),
      async app => app.addHook('onRequest', (_request, _reply, done) => RequestContext.create(orm.em, done)),
    );
}

/** `GET /authors/:id` on the framework asked for, with its middleware put in by the system's own function. */
async function serve(
  handler: Handler,
  node: (listener: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => (req: IncomingMessage, res: ServerResponse) => unknown,
  useExpress: (app: express.Express) => unknown,
  useFastify: (app: FastifyInstance) => PromiseLike<unknown>,
): Promise<number> {
  const answer = async (id: number) => JSON.stringify(await handler(id));
  if (config.framework === 'node') {
    const server = createServer(
      node(async (req, res) => {
        const id = Number(/^\/authors\/(\d+)$/.exec(req.url ?? '')?.[1]);
        res.writeHead(200, { 'content-type': 'application/json' }).end(await answer(id));
      }),
    );
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }
  if (config.framework === 'express') {
    const app = express();
    useExpress(app);
    app.get('/authors/:id', async (req, res) => {
      res.type('application/json').send(await answer(Number(req.params.id)));
    });
    const server = createServer(app);
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }
  const app = Fastify();
  await useFastify(app);
  app.get<{ Params: { id: string } }>('/authors/:id', async (request, reply) => reply.type('application/json').send(await answer(Number(request.params.id))));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

const port = await listen(route);
process.send!({ port });
// The parent reads this process's CPU time around each run: CPU per request is steadier than requests per second
// on a machine that other work shares.
process.on('message', message => {
  if (message === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ cpu: user + system });
  }
});
// Bounded however the parent ends: it disconnects, or ten minutes pass.
const stop = () => void close().finally(() => process.exit(0));
process.on('disconnect', stop);
setTimeout(stop, 600_000).unref();
