import type { IncomingMessage, ServerResponse } from 'node:http';
import { SqliteDriver } from '@mikro-orm/sqlite';
import express from 'express';
import Fastify from 'fastify';
import { describe, expectTypeOf, it } from 'vitest';
import { ShardedMikroORM, type ShardedEntityManager } from 'mikro-orm-sharding';
import { fastifyShardedContext } from 'mikro-orm-sharding/fastify';
import { runInRequestContext, shardedContext, withShardedContext } from 'mikro-orm-sharding/http';
import { Author, Book, Tag } from '../support/entities.ts';

// Type tests: checked by tsc (vitest's typecheck mode), never run.
declare const typed: ShardedMikroORM<SqliteDriver, 's0' | 's1' | 'log'>;

describe('binds and pins with typed shard ids', () => {
  it('checks the shards of binds and defaultBind, and needs no chooser', async () => {
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book, Tag],
      shards: { main: {}, log: {} },
      binds: { Tag: 'log' },
      defaultBind: 'main',
    });
    expectTypeOf(orm).toEqualTypeOf<ShardedMikroORM<SqliteDriver, 'main' | 'log'>>();
    expectTypeOf(orm.routing.binds).toEqualTypeOf<
      { readonly byName: Readonly<Record<string, 'main' | 'log'>>; readonly defaultBind: 'main' | 'log' | undefined } | undefined
    >();
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author],
      shards: { main: {}, log: {} },
      // @ts-expect-error 'nope' is not a shard
      binds: { Author: 'nope' },
      defaultBind: 'main',
    });
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author],
      shards: { main: {}, log: {} },
      binds: new Map([[Author, 'log' as const]]),
      // @ts-expect-error 'nope' is not a shard
      defaultBind: 'nope',
    });
  });

  it('pins a fork to a typed shard', () => {
    const pinned = typed.em.fork({ shard: 'log' });
    expectTypeOf(pinned).toEqualTypeOf<ShardedEntityManager<'s0' | 's1' | 'log'>>();
    expectTypeOf(pinned.pinnedShard).toEqualTypeOf<'s0' | 's1' | 'log' | undefined>();
    // @ts-expect-error 's9' is not a shard
    typed.em.fork({ shard: 's9' });
  });
});

describe('the request-scope middleware', () => {
  it('fits Node http, Express and Fastify, with shardResolver typed by the fleet and the framework', async () => {
    const listener = withShardedContext(typed, async (_req: IncomingMessage, res: ServerResponse) => void res.end(), {
      shardResolver: req => (req.headers.host === 'log.example' ? 'log' : undefined),
    });
    expectTypeOf(listener).parameters.toEqualTypeOf<[IncomingMessage, ServerResponse]>();

    const app = express();
    app.use(shardedContext(typed, { shardResolver: (req: express.Request) => (req.get('x-tenant') === 'a' ? 's1' : null) }));
    app.use(shardedContext(typed));

    const server = Fastify();
    await server.register(fastifyShardedContext, { orm: typed, shardResolver: request => (request.hostname === 'a' ? 's0' : undefined) });
    // @ts-expect-error the fleet is required
    await server.register(fastifyShardedContext, {});

    const answer = runInRequestContext(typed, { tenant: 'a' }, () => 42, { shardResolver: request => (request.tenant === 'a' ? 's0' : undefined) });
    expectTypeOf(answer).toEqualTypeOf<number | Promise<number>>();
  });
});
