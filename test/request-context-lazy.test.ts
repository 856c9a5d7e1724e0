/**
 * A request context forks a shard when the request first uses it: requests through the middleware to one shard each
 * of a fleet of 200 SQLite shards (at most 8 open) open and fork those shards alone, and inside a request each
 * shard's own `orm.shard(id).em` still resolves to the request's fork, one per request.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p, RequestContext } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, ShardedRequestContext } from 'mikro-orm-sharding';
import { withShardedContext } from 'mikro-orm-sharding/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PageSchema = defineEntity({
  name: 'Page',
  properties: { id: p.integer().primary().autoincrement(false), tenant: p.string() },
});
class Page extends PageSchema.class {}
PageSchema.setClass(Page);

const SHARDS = 200;
const MAX_OPEN = 8;
const dir = mkdtempSync(join(tmpdir(), 'mikro-shard-lazy-forks-'));
const opened: string[] = [];
let orm: ShardedMikroORM;
let server: Server;
let base: string;

/** What a request saw of its request context. */
interface Seen {
  readonly forked: string[];
  readonly ownFork: boolean;
  readonly pinned: string | null;
  readonly tenant: string | null;
}

beforeAll(async () => {
  orm = await ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Page],
    shards: {},
    maxOpenShards: MAX_OPEN,
    onShardOpen: async ({ id, orm: shard }) => {
      opened.push(id);
      await shard.schema.update();
    },
    shardChooser: ({ entity }) => (entity as Page).tenant,
  });
  for (let i = 0; i < SHARDS; i++) {
    await orm.addShard(`t${i}`, { dbName: join(dir, `t${i}.db`) });
  }
  server = createServer(
    withShardedContext(
      orm,
      async (req, res) => {
        const tenant = String(req.headers['x-tenant']);
        const id = Number(req.headers['x-id']);
        orm.em.create(Page, { id, tenant });
        await orm.em.flush();
        const page = await orm.em.findOne(Page, id);
        const context = RequestContext.currentRequestContext()!;
        const seen: Seen = {
          forked: [...context.map.keys()],
          // MikroORM's own lookups find the request's fork of the shard, and the sharded em holds that fork.
          ownFork: orm.shard(tenant).em.getContext() === context.map.get(tenant) && orm.em.on(tenant) === context.map.get(tenant),
          pinned: orm.em.pinnedShard ?? null,
          tenant: page?.tenant ?? null,
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
      },
      { shardResolver: req => req.headers['x-tenant'] as string },
    ),
  );
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise(resolve => server?.close(resolve));
  await orm?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function request(tenant: string, id: number): Promise<Seen> {
  const response = await fetch(`${base}/`, { headers: { 'x-tenant': tenant, 'x-id': String(id) } });
  expect(response.status).toBe(200);
  return (await response.json()) as Seen;
}

describe('request contexts fork a shard on first use', () => {
  it('requests to one shard each of 200 open and fork those shards alone', async () => {
    const tenants = ['t3', 't77', 't150', 't199'];
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => request(tenants[i % tenants.length]!, i)));
    answers.forEach((seen, i) => {
      const tenant = tenants[i % tenants.length]!;
      expect(seen).toEqual({ forked: [tenant], ownFork: true, pinned: tenant, tenant });
    });
    expect(new Set(opened)).toEqual(new Set(tenants));
    expect([...orm.shards.keys()].sort()).toEqual([...tenants].sort());
    for (const tenant of tenants) {
      expect(await orm.em.fork().count(Page, {}, { shard: tenant } as never)).toBe(10);
    }
  });

  it('a context made without the middleware forks only what the request uses, once, and nothing when it uses nothing', async () => {
    const before = orm.shards.size;
    const forked = await ShardedRequestContext.create(orm.em, async () => {
      const em = ShardedRequestContext.getEntityManager(orm)!;
      const context = RequestContext.currentRequestContext()!;
      expect(context.map.size).toBe(0);
      const first = orm.shard('t10').em.getContext();
      expect(em.on('t10')).toBe(first);
      expect(orm.shard('t10').em.getContext()).toBe(first);
      expect(await em.count(Page, {}, { shard: 't11' } as never)).toBe(0);
      return [...context.map.keys()];
    });
    expect(forked).toEqual(['t10', 't11']);
    expect(orm.shards.size).toBeLessThanOrEqual(Math.max(before, MAX_OPEN));
    expect(RequestContext.currentRequestContext()).toBeUndefined();
  });

  it('a context inside another forks from the outer fork of a shard, and the outer one is back after it', async () => {
    await ShardedRequestContext.create(orm.em, async () => {
      const outer = ShardedRequestContext.getEntityManager(orm)!;
      const outerFork = orm.shard('t20').em.getContext();
      outerFork.create(Page, { id: 900, tenant: 't20' });
      const inner = await ShardedRequestContext.create(orm.em, async () => {
        const em = ShardedRequestContext.getEntityManager(orm)!;
        expect(em).not.toBe(outer);
        const fork = orm.shard('t20').em.getContext();
        expect(fork).not.toBe(outerFork);
        // A fork of the outer fork, as MikroORM's RequestContext.create makes inside another context: its own identity map.
        expect(fork.getUnitOfWork().getPersistStack().size).toBe(0);
        return em;
      });
      expect(inner).not.toBe(outer);
      expect(ShardedRequestContext.getEntityManager(orm)).toBe(outer);
      expect(orm.shard('t20').em.getContext()).toBe(outerFork);
      expect(outerFork.getUnitOfWork().getPersistStack().size).toBe(1);
    });
    expect(ShardedRequestContext.getEntityManager(orm)).toBeUndefined();
  });
});
