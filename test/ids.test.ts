import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash, idGenerator, ShardedMikroORM, type HashStrategy, type IdGenerator } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { keyedEntities, logged, Order, OrderLine, QueryLog, tableRows, Ticket } from './support/keyed.ts';
import { refusal } from './support/refusal.ts';
import { topologies, type Topology } from './support/topology.ts';

// Ids that carry their bucket: monotonic in a process, unique across processes with different node ids, decoded
// back; stored exactly (beyond 2^53) on SQLite and PostgreSQL; and a lookup by id reads one shard with one query.

const exec = promisify(execFile);
const WORKER = fileURLToPath(new URL('./processes/ids-worker.ts', import.meta.url));

describe('idGenerator', () => {
  it('makes 19-digit ids that only increase, even when the clock stands still or goes back', () => {
    let clock = Date.UTC(2026, 0, 1);
    const ids = idGenerator({ node: 5, now: () => clock });
    let previous = 0n;
    for (let i = 0; i < 20_000; i++) {
      if (i % 1000 === 0) clock -= 3; // the clock goes back now and then
      const id = ids.next(i % 1024);
      expect(id).toMatch(/^\d{19}$/);
      expect(BigInt(id) > previous).toBe(true);
      previous = BigInt(id);
    }
  });

  it('decodes what it encoded, and reads the bucket from the digits as a bigint would', async () => {
    const time = Date.UTC(2030, 5, 15, 12, 0, 0, 123);
    const ids = idGenerator({ node: 63, now: () => time });
    const id = ids.next(1023);
    expect(ids.decode(id)).toEqual({ time: new Date(time), sequence: 0, node: 63, bucket: 1023 });
    expect(ids.decode(ids.next(7))).toMatchObject({ sequence: 1, bucket: 7 });
    for (let i = 0; i < 200; i++) {
      const made = ids.next();
      expect(ids.bucketOf(made)).toBe(Number(BigInt(made) % 1024n));
      expect(ids.bucketOf(BigInt(made))).toBe(ids.decode(made).bucket);
    }
    expect(ids.bucketOf('12a')).toBeUndefined();
    expect(ids.bucketOf({})).toBeUndefined();
    expect((await refusal(() => ids.decode('-5'))).code).toBe('INVALID_SHARD_KEY');
  });

  it('borrows the next millisecond when a millisecond’s sequence is used up', () => {
    const time = Date.UTC(2026, 0, 1);
    const ids = idGenerator({ node: 0, now: () => time }); // 5 sequence bits: 32 ids per millisecond
    const times = Array.from({ length: 70 }, () => ids.decode(ids.next(0)).time.getTime() - time);
    expect(times.slice(0, 32).every(t => t === 0)).toBe(true);
    expect(times[32]).toBe(1);
    expect(times[69]).toBe(2);
  });

  it('never makes the same id on two nodes, whatever the clock', () => {
    const time = Date.UTC(2026, 0, 1);
    const a = idGenerator({ node: 1, now: () => time });
    const b = idGenerator({ node: 2, now: () => time });
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      seen.add(a.next(i % 3));
      seen.add(b.next(i % 3));
    }
    expect(seen.size).toBe(10_000);
  });

  it('spreads ids made without a bucket over every bucket in turn', () => {
    const ids = idGenerator({ node: 3, bucketBits: 2 });
    const buckets = Array.from({ length: 8 }, () => ids.bucketOf(ids.next()));
    expect(new Set(buckets)).toEqual(new Set([0, 1, 2, 3]));
  });

  it('refuses a node id that does not fit, and a layout with no room for a sequence', async () => {
    expect((await refusal(() => idGenerator({ node: 64 }))).code).toBe('INVALID_OPTIONS');
    expect((await refusal(() => idGenerator({ node: -1 }))).code).toBe('INVALID_OPTIONS');
    expect((await refusal(() => idGenerator({ node: 0, bucketBits: 10, nodeBits: 11 }))).code).toBe('INVALID_OPTIONS');
    expect((await refusal(() => idGenerator({ node: 0 }).next(1024))).code).toBe('INVALID_OPTIONS');
  });

  it('says "got undefined" for a value left out, not "got ."', async () => {
    expect((await refusal(() => idGenerator({} as { node: number }))).message).toContain('`node` to be a whole number from 0 to 63; got undefined.');
  });

  it('are unique across processes with different node ids, and increase in each', { timeout: 60_000 }, async () => {
    const runs = await Promise.all(
      [0, 1, 2].map(async node => {
        const { stdout } = await exec(process.execPath, ['--conditions=@mikro-orm-sharding/source', WORKER, String(node), '20000']);
        return JSON.parse(stdout) as string[];
      }),
    );
    const all = new Set(runs.flat());
    expect(all.size).toBe(60_000);
    for (const made of runs) {
      expect(made.every((id, i) => i === 0 || BigInt(id) > BigInt(made[i - 1]!))).toBe(true);
    }
  });
});

describe.each(['sqlite', 'postgresql'] as const)('ids that carry their shard on %s', driver => {
  let topology: Topology;
  let orm: ShardedMikroORM;
  let strategy: HashStrategy;
  let ids: IdGenerator;
  const log = new QueryLog();

  beforeAll(async () => {
    topology = topologies[driver]();
    strategy = hash({ shards: ['s0', 's1', 's2'] });
    ids = idGenerator({ node: 7 });
    orm = await ShardedMikroORM.init({
      ...topology.shared,
      entities: keyedEntities,
      shards: logged(topology.shards(3), log),
      pool: { min: 0, max: 2 },
      shardBy: {
        Order: { key: 'id', strategy, ids },
        OrderLine: { parent: 'order', ids },
        Ticket: { key: 'tenantId', strategy, ids },
      },
    });
    await orm.schema.refresh();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  it('writes an order where its id’s bucket is, its lines with it, and finds either with one query on one shard', async () => {
    const em = orm.em.fork();
    const made: { order: string; line: string }[] = [];
    for (let i = 0; i < 30; i++) {
      const order = em.create(Order, { id: ids.next(), customer: `c${i}` });
      const line = em.create(OrderLine, { id: ids.next(ids.bucketOf(order.id)), sku: `sku-${i}`, order });
      made.push({ order: order.id, line: line.id });
    }
    await em.flush();
    const orders = await tableRows(orm, 'orders');
    for (const { order } of made) {
      expect(BigInt(order) > 2n ** 53n).toBe(true);
      expect(orders[strategy.shardForBucket(ids.bucketOf(order)!, { orm, entityName: 'Order' }) as string]).toContain(order);
    }
    for (const { order, line } of made.slice(0, 5)) {
      const reader = orm.em.fork();
      const byOrder = await log.during(() => reader.findOneOrFail(Order, order));
      expect(byOrder).toEqual({ shards: [reader.shardOf(await reader.findOneOrFail(Order, order))], queries: 1 });
      const byLine = await log.during(() => reader.findOneOrFail(OrderLine, line));
      expect(byLine.shards).toEqual(byOrder.shards);
      expect(byLine.queries).toBe(1);
      const found = await reader.findOneOrFail(OrderLine, line, { populate: ['order'] });
      expect(found.id).toBe(line);
      expect(found.order.id).toBe(order);
      const lines = await log.during(() => reader.find(OrderLine, { order }));
      expect(lines.shards).toEqual(byOrder.shards);
    }
    // Exact values, and the global order by id is the numeric one, on every driver.
    const sorted = await orm.em.fork().find(Order, {}, { orderBy: { id: 'desc' }, limit: 10 });
    expect(sorted.map(order => order.id)).toEqual(
      made
        .map(({ order }) => order)
        .sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : -1))
        .slice(0, 10),
    );
  });

  it('refuses an id whose bucket is not its key’s, writing nothing', async () => {
    const before = await allRows(orm);
    const em = orm.em.fork();
    const tenantBucket = strategy.bucketOf('acme');
    em.create(Ticket, { id: ids.next((tenantBucket + 1) % 1024), tenantId: 'acme', subject: 'wrong bucket' });
    const error = await refusal(() => em.flush());
    expect(error.code).toBe('SHARD_KEY_MISMATCH');
    expect(error.message).toContain(`maps to bucket ${tenantBucket}`);
    expect(await allRows(orm)).toEqual(before);

    const right = orm.em.fork();
    const ticket = right.create(Ticket, { id: ids.next(tenantBucket), tenantId: 'acme', subject: 'right bucket' });
    await right.flush();
    const lookup = await log.during(() => orm.em.fork().findOneOrFail(Ticket, ticket.id));
    expect(lookup.queries).toBe(1);
    expect(lookup.shards).toEqual([right.shardOf(ticket)]);
  });

  it('refuses a line whose id carries another bucket than its order', async () => {
    const em = orm.em.fork();
    const order = em.create(Order, { id: ids.next(5), customer: 'x' });
    em.create(OrderLine, { id: ids.next(6), sku: 'y', order });
    await expect(em.flush()).rejects.toMatchObject({ code: 'SHARD_KEY_MISMATCH' });
  });
});
