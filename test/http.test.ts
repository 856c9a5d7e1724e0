/**
 * The request-scope middleware of `mikro-orm-sharding/http` and `mikro-orm-sharding/fastify`, with real HTTP
 * requests on loopback, on Node's `http`, Express 5 and Fastify 5, over SQLite and PostgreSQL shards: each request
 * gets its own sharded entity manager as `orm.em`, `shardResolver` pins a request to its tenant's shard (the
 * choosers are not asked), and a resolver that fails, or names no shard, fails the request alone.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineEntity, p, ValidationError } from '@mikro-orm/core';
import express from 'express';
import Fastify from 'fastify';
import { ShardedMikroORM, ShardedRequestContext, type ShardedEntityManager } from 'mikro-orm-sharding';
import { fastifyShardedContext } from 'mikro-orm-sharding/fastify';
import { runInRequestContext, shardedContext, withShardedContext, type ShardedContextOptions } from 'mikro-orm-sharding/http';
import { createTestShards } from 'mikro-orm-sharding/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topologies, type Topology } from './support/topology.ts';
import { rawCount } from './seeds/raw.ts';

const NoteSchema = defineEntity({
  name: 'Note',
  properties: { id: p.integer().primary().autoincrement(false), tenant: p.string(), text: p.string() },
});
class Note extends NoteSchema.class {}
NoteSchema.setClass(Note);

type Shard = 's0' | 's1' | 's2';
/** Tenants and their shards; `sleepy` is found by an asynchronous lookup. */
const TENANTS: Record<string, Shard> = { acme: 's1', globex: 's2', initech: 's0' };
const SHARD_OF_ID = (id: number): Shard => `s${id % 3}` as Shard;

/** What every framework's routes answer, from the same route logic. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** The route logic, shared by the three servers: it uses only the global `orm.em`, as an application would. */
function routes(orm: ShardedMikroORM<never, Shard>, seen: Set<ShardedEntityManager>) {
  return {
    async create(body: { id: number; text: string }, tenant: string | undefined): Promise<Answer> {
      const note = orm.em.create(Note, { id: body.id, tenant: tenant ?? '-', text: body.text });
      await orm.em.flush();
      return { status: 201, body: { shard: orm.em.shardOf(note) } };
    },
    async list(): Promise<Answer> {
      seen.add(ShardedRequestContext.getEntityManager(orm)!);
      const notes = await orm.em.find(Note, {}, { orderBy: { id: 'asc' } });
      return { status: 200, body: { pinned: orm.em.pinnedShard ?? null, ids: notes.map(n => n.id) } };
    },
    async one(id: number): Promise<Answer> {
      const note = await orm.em.findOne(Note, id);
      return { status: note ? 200 : 404, body: note ? { text: note.text, shard: orm.em.shardOf(note) } : null };
    },
  };
}

const resolver: ShardedContextOptions<{ headers: IncomingMessage['headers'] }, Shard>['shardResolver'] = request => {
  const tenant = request.headers['x-tenant'];
  if (tenant === undefined) return undefined;
  if (tenant === 'forbidden') throw Object.assign(new Error('no such tenant'), { status: 404, statusCode: 404 });
  if (tenant === 'sleepy') return new Promise<Shard>(resolve => setTimeout(() => resolve('s2'), 5));
  return TENANTS[String(tenant)] ?? String(tenant);
};

interface Running {
  readonly url: string;
  close(): Promise<void>;
}

type Start = (orm: ShardedMikroORM<never, Shard>, seen: Set<ShardedEntityManager>) => Promise<Running>;

function listen(server: Server): Promise<Running> {
  return new Promise(resolve =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done, fail) => server.close(error => (error ? fail(error) : done()))),
      }),
    ),
  );
}

async function bodyOf(request: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of request) text += String(chunk);
  return JSON.parse(text);
}

const servers: Record<'node' | 'express' | 'fastify', Start> = {
  node: (orm, seen) => {
    const app = routes(orm, seen);
    const send = (res: ServerResponse, { status, body }: Answer) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const listener = withShardedContext(
      orm,
      async (req, res) => {
        const tenant = req.headers['x-tenant'] as string | undefined;
        const route = /^\/notes(?:\/(\d+))?$/.exec(req.url ?? '');
        if (!route) return send(res, { status: 404, body: null });
        if (req.method === 'POST') return send(res, await app.create((await bodyOf(req)) as { id: number; text: string }, tenant));
        return send(res, route[1] === undefined ? await app.list() : await app.one(Number(route[1])));
      },
      {
        shardResolver: resolver,
        onError: (error, _req, res) =>
          send(res, { status: (error as { statusCode?: number }).statusCode ?? 500, body: { error: (error as { code?: string }).code ?? 'failed' } }),
      },
    );
    return listen(createServer(listener));
  },
  express: (orm, seen) => {
    const app = routes(orm, seen);
    const server = express();
    server.use(express.json());
    server.use(shardedContext(orm, { shardResolver: resolver }));
    server.post('/notes', async (req, res) => {
      const { status, body } = await app.create(req.body as { id: number; text: string }, req.get('x-tenant'));
      res.status(status).json(body);
    });
    server.get('/notes', async (_req, res) => {
      const { status, body } = await app.list();
      res.status(status).json(body);
    });
    server.get('/notes/:id', async (req, res) => {
      const { status, body } = await app.one(Number(req.params.id));
      res.status(status).json(body);
    });
    server.use((error: { status?: number; code?: string }, _req: express.Request, res: express.Response, next: express.NextFunction) => {
      if (res.headersSent) return next(error);
      res.status(error.status ?? 500).json({ error: error.code ?? 'failed' });
    });
    return listen(createServer(server));
  },
  fastify: async (orm, seen) => {
    const app = routes(orm, seen);
    const server = Fastify();
    await server.register(fastifyShardedContext, { orm, shardResolver: resolver });
    server.post('/notes', async (request, reply) => {
      const { status, body } = await app.create(request.body as { id: number; text: string }, request.headers['x-tenant'] as string | undefined);
      return reply.code(status).send(body);
    });
    server.get('/notes', async (_request, reply) => {
      const { status, body } = await app.list();
      return reply.code(status).send(body);
    });
    server.get<{ Params: { id: string } }>('/notes/:id', async (request, reply) => {
      const { status, body } = await app.one(Number(request.params.id));
      return reply.code(status).send(body);
    });
    server.setErrorHandler((error: { statusCode?: number; code?: string }, _request, reply) =>
      reply.code(error.statusCode ?? 500).send({ error: error.code ?? 'failed' }),
    );
    await server.listen({ port: 0, host: '127.0.0.1' });
    return { url: `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`, close: () => server.close() };
  },
};

async function call(url: string, path: string, tenant?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = tenant === undefined ? {} : { 'x-tenant': tenant };
  const init: RequestInit =
    body === undefined ? { headers } : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

describe.each(['sqlite', 'postgresql'] as const)('request scope on %s', driver => {
  let topology: Topology;
  let orm: ShardedMikroORM<never, Shard>;
  const chooserCalls: string[] = [];

  beforeAll(async () => {
    topology = topologies[driver]();
    orm = (await ShardedMikroORM.init({
      ...topology.shared,
      entities: [Note],
      pool: { min: 0, max: 3 },
      shards: topology.shards(3) as Record<Shard, object>,
      shardChooser: ({ entity }) => {
        chooserCalls.push('shardChooser');
        return SHARD_OF_ID((entity as Note).id);
      },
      idChooser: ({ id }) => {
        chooserCalls.push('idChooser');
        return [SHARD_OF_ID(Number(id))];
      },
    })) as unknown as ShardedMikroORM<never, Shard>;
    await orm.schema.refresh();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  describe.each(Object.keys(servers) as (keyof typeof servers)[])('%s', framework => {
    let server: Running;
    const seen = new Set<ShardedEntityManager>();
    // Multiples of 3: each tenant's note has an id the id chooser maps to another shard than the tenant's.
    const base = { node: 300, express: 600, fastify: 900 }[framework];

    beforeAll(async () => {
      await orm.schema.clear();
      server = await servers[framework](orm, seen);
    });

    afterAll(() => server?.close());

    it('pins each tenant\u2019s requests to its shard, without asking the choosers', async () => {
      chooserCalls.length = 0;
      const created = await call(server.url, '/notes', 'acme', { id: base + 3, text: 'for acme' });
      expect(created).toEqual({ status: 201, body: { shard: 's1' } });
      expect(await call(server.url, '/notes', 'globex', { id: base + 4, text: 'for globex' })).toEqual({ status: 201, body: { shard: 's2' } });
      expect(await call(server.url, '/notes', 'initech', { id: base + 5, text: 'for initech' })).toEqual({ status: 201, body: { shard: 's0' } });
      // An id whose chooser shard is s0, written and read on acme's shard.
      expect(await call(server.url, `/notes/${base + 3}`, 'acme')).toEqual({ status: 200, body: { text: 'for acme', shard: 's1' } });
      expect(await call(server.url, `/notes/${base + 3}`, 'globex')).toEqual({ status: 404, body: null });
      expect(await call(server.url, '/notes', 'acme')).toEqual({ status: 200, body: { pinned: 's1', ids: [base + 3] } });
      expect(await call(server.url, '/notes', 'sleepy')).toEqual({ status: 200, body: { pinned: 's2', ids: [base + 4] } });
      expect(chooserCalls).toEqual([]);
      expect(await rawCount(orm, 's1', 'note')).toBe(1);
      expect(await rawCount(orm, 's0', 'note')).toBe(1);
    });

    it('routes a request without a tenant by the choosers, over every shard', async () => {
      chooserCalls.length = 0;
      expect(await call(server.url, '/notes')).toEqual({ status: 200, body: { pinned: null, ids: [base + 3, base + 4, base + 5] } });
      expect(await call(server.url, `/notes/${base + 4}`)).toEqual({ status: 404, body: null });
      expect(await call(server.url, '/notes', undefined, { id: base + 7, text: 'chosen' })).toEqual({ status: 201, body: { shard: SHARD_OF_ID(base + 7) } });
      expect(chooserCalls).toEqual(['idChooser', 'shardChooser']);
    });

    it('fails the request alone when the resolver throws or names no shard, writing nothing', async () => {
      const before = await rawCount(orm, 's0', 'note');
      expect(await call(server.url, '/notes', 'forbidden', { id: base + 9, text: 'x' })).toEqual({ status: 404, body: { error: 'failed' } });
      expect(await call(server.url, '/notes', 'umbrella', { id: base + 9, text: 'x' })).toEqual({ status: 500, body: { error: 'UNKNOWN_SHARD' } });
      expect(await rawCount(orm, 's0', 'note')).toBe(before);
      expect((await call(server.url, '/notes', 'acme')).status).toBe(200);
    });

    it('gives every request, also concurrent ones, its own entity manager', async () => {
      seen.clear();
      const tenants = ['acme', 'globex', 'initech', 'sleepy', undefined];
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => call(server.url, '/notes', tenants[i % tenants.length])));
      expect(answers.every(answer => answer.status === 200)).toBe(true);
      expect(answers.map(answer => answer.body.pinned)).toEqual(Array.from({ length: 30 }, (_, i) => [`s1`, 's2', 's0', 's2', null][i % 5]));
      expect(seen.size).toBe(30);
      // Outside a request, the global entity manager refuses context-specific work, as MikroORM's does.
      await expect(orm.em.find(Note, {})).rejects.toBeInstanceOf(ValidationError);
    });
  });
});

describe('bad middleware options', () => {
  it('refuse a resolver, an onError or a fleet of the wrong kind when the middleware is made, not at every request', async () => {
    await using shards = await createTestShards({ driver: 'sqlite', count: 2 });
    await using orm = await ShardedMikroORM.init({ ...shards.options, entities: [Note], shardChooser: () => 's0' });
    const resolver = 's1' as unknown as () => undefined;
    const refusals = [
      () => shardedContext(orm, { shardResolver: resolver }),
      () => withShardedContext(orm, () => undefined, { shardResolver: resolver }),
      () => withShardedContext(orm, () => undefined, { onError: 500 as unknown as () => void }),
      () => withShardedContext(orm, 'listener' as unknown as () => void),
      () => runInRequestContext(orm, { headers: {} }, () => 1, { shardResolver: resolver }),
      () => shardedContext({} as typeof orm),
      () => shardedContext(orm, null as unknown as object),
    ];
    for (const make of refusals) {
      expect(make).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    }
    const fastify = Fastify();
    await expect(fastify.register(fastifyShardedContext, { orm, shardResolver: resolver })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await fastify.close();
  });
});
