import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directory, hash, jump, range, rebalance, ShardDirectoryEntry, ShardedMikroORM, type ShardId } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { Account, Event, Invoice, keyedEntities, logged, QueryLog, tableRows } from './support/keyed.ts';
import { refusal } from './support/refusal.ts';
import { topologies, type Topology } from './support/topology.ts';

// Each strategy behind shardBy on real databases: a directory kept in a table (new keys recorded, cached, shared
// between fleets), hash buckets kept in a table and moved, ranges of dates (hot and archive), jump hash.

const shardIds = ['s0', 's1', 's2'] as const;

describe.each(['sqlite', 'postgresql'] as const)('strategies on %s', driver => {
  let topology: Topology;
  const opened: ShardedMikroORM[] = [];
  const log = new QueryLog();

  /** A fleet over the same three databases (a second one is another process's view). */
  async function open(options: Partial<Parameters<typeof ShardedMikroORM.init>[0]>): Promise<ShardedMikroORM> {
    const orm = await ShardedMikroORM.init({
      ...topology.shared,
      entities: keyedEntities,
      shards: logged(topology.shards(3), log),
      pool: { min: 0, max: 2 },
      ...options,
    } as Parameters<typeof ShardedMikroORM.init>[0]);
    opened.push(orm);
    return orm;
  }

  beforeAll(() => {
    topology = topologies[driver]();
  });

  afterAll(async () => {
    for (const orm of opened) await orm.close(true);
    await topology?.dispose();
  });

  describe('directory', () => {
    it('records where each new key goes, keeps it there, and shares it with another fleet', async () => {
      const tenants = directory({ shard: 's0', shards: [...shardIds], cacheSize: 2 });
      const orm = await open({ shardBy: { Account: { key: 'tenantId', strategy: tenants }, Invoice: { parent: 'account' } } });
      await orm.schema.refresh();
      const em = orm.em.fork();
      em.create(Account, { id: 1, tenantId: 'acme', name: 'a' });
      em.create(Account, { id: 2, tenantId: 'globex', name: 'g' }, { shard: 's2' }); // placed by hand: recorded
      em.create(Account, { id: 3, tenantId: 'acme', name: 'a2' });
      await em.flush();
      const entries = await orm
        .shard('s0')
        .em.fork()
        .find(ShardDirectoryEntry, {}, { orderBy: { key: 'asc' } });
      expect(entries.map(entry => [entry.directory, entry.key, entry.shard])).toEqual([
        ['default', 'acme', hash({ shards: [...shardIds] }).shardFor('acme', { orm, entityName: 'Account' })],
        ['default', 'globex', 's2'],
      ]);
      const acme = entries[0]!.shard;
      expect((await tableRows(orm, 'account'))[acme]).toEqual(['1', '3']);

      // Keys stay put: a { shard } elsewhere is refused, nothing written.
      const before = await allRows(orm);
      const wrong = orm.em.fork();
      wrong.create(Account, { id: 4, tenantId: 'acme', name: 'x' }, { shard: shardIds.find(shard => shard !== acme)! });
      expect((await refusal(() => wrong.flush())).code).toBe('SHARD_KEY_MISMATCH');
      expect(await allRows(orm)).toEqual(before);

      // Another fleet (another process) reads the same directory; a query by key reads one shard.
      const other = await open({ shardBy: { Account: { key: 'tenantId', strategy: tenants }, Invoice: { parent: 'account' } } });
      const reader = other.em.fork();
      const found = await log.during(() => reader.find(Account, { tenantId: 'globex' }));
      expect(found.shards).toEqual(['s0', 's2']); // the directory on s0, the rows on s2
      expect((await reader.find(Account, { tenantId: 'globex' })).map(account => account.id)).toEqual([2]);
      const cached = await log.during(() => reader.count(Account, { tenantId: 'globex' }));
      expect(cached.shards).toEqual(['s2']); // the entry is cached now

      // A key the directory has never seen may have rows anywhere: every shard is read.
      const unknown = await log.during(() => reader.find(Account, { tenantId: 'nobody' }));
      expect(new Set(unknown.shards)).toEqual(new Set(shardIds));

      // The cache is bounded: with room for two keys, a third pushes the least recently used out, which is read again.
      await reader.count(Account, { tenantId: 'acme' });
      expect(await tenants.assign(other, 'initech', 's1')).toBe('s1');
      const evicted = await log.during(() => reader.count(Account, { tenantId: 'globex' }));
      expect(evicted.shards).toContain('s0');
    });

    it('assigns a key by hand, and refuses a directory shard that does not declare the entry table', async () => {
      const tenants = directory({ shard: 's1', shards: [...shardIds], name: 'tenants' });
      const orm = await open({ shardBy: { Account: { key: 'tenantId', strategy: tenants } } });
      await orm.schema.refresh();
      expect(await tenants.assign(orm, 'umbrella', 's0')).toBe('s0');
      expect(await tenants.assign(orm, 'umbrella', 's2')).toBe('s0'); // first writer wins
      const em = orm.em.fork();
      em.create(Account, { id: 9, tenantId: 'umbrella', name: 'u' });
      await em.flush();
      expect((await tableRows(orm, 'account')).s0).toEqual(['9']);

      const error = await refusal(() =>
        open({
          entities: [Account],
          shardBy: { Account: { key: 'tenantId', strategy: directory({ shard: 's0', shards: [...shardIds] }) } },
        }),
      );
      expect(error.code).toBe('INVALID_OPTIONS');
      expect(error.message).toMatch(/ShardDirectoryEntry/);
    });
  });

  describe('hash with its buckets in a table', () => {
    it('fills the table with the even spread on first use, and routes moved buckets to their new shard', async () => {
      const byTenant = hash({ shards: ['s0', 's1'], buckets: 16, directory: { shard: 's0', name: 'accounts' } });
      const orm = await open({ shardBy: { Account: { key: 'tenantId', strategy: byTenant }, Invoice: { parent: 'account' } } });
      await orm.schema.refresh();
      expect(await byTenant.directory.assignments(orm)).toEqual(Array.from({ length: 16 }, (_, b) => `s${b % 2}`));
      const em = orm.em.fork();
      const tenants = Array.from({ length: 12 }, (_, i) => `tenant-${i}`);
      tenants.forEach((tenantId, i) => em.create(Account, { id: i + 1, tenantId, name: tenantId }));
      await em.flush();
      expect((await tableRows(orm, 'account')).s2).toEqual([]);

      // A third shard: the fewest bucket moves to even out, rows copied first, then the buckets moved.
      const moves = rebalance(await byTenant.directory.assignments(orm), [...shardIds]);
      expect(moves.map(move => move.to)).toEqual(Array(5).fill('s2'));
      for (const { bucket, from } of moves) {
        const moving = tenants.filter(tenant => byTenant.bucketOf(tenant) === bucket);
        const rows = await orm.em.fork().find(Account, { tenantId: { $in: moving } }, { shard: from as never });
        if (rows.length > 0) {
          await orm
            .shard('s2')
            .em.fork()
            .insertMany(
              Account,
              rows.map(row => ({ id: row.id, tenantId: row.tenantId, name: row.name })),
            );
          await orm
            .shard(from as ShardId)
            .em.fork()
            .nativeDelete(Account, { tenantId: { $in: moving } });
        }
      }
      await byTenant.directory.moveBuckets(
        orm,
        moves.map(move => move.bucket),
        's2',
      );
      const reader = orm.em.fork();
      for (const tenantId of tenants) {
        const account = await reader.findOneOrFail(Account, { tenantId });
        expect(reader.shardOf(account)).toBe(byTenant.shardFor(tenantId, { orm, entityName: 'Account' }));
      }
      expect(await reader.count(Account, { tenantId: { $in: tenants } })).toBe(12);
      expect((await tableRows(orm, 'account')).s2!.length).toBeGreaterThan(0);

      // Another process's fleet reads the moved directory.
      const other = await open({ shardBy: { Account: { key: 'tenantId', strategy: byTenant } } });
      await byTenant.directory.reload(other);
      expect(await byTenant.directory.assignments(other)).toEqual(await byTenant.directory.assignments(orm));
    });
  });

  describe('range', () => {
    it('keeps old events on the archive shard and prunes date ranges to the shards they overlap', async () => {
      const byDate = range([{ shard: 's0' }, { shard: 's1', from: new Date('2024-01-01') }, { shard: 's2', from: new Date('2025-01-01') }]);
      const orm = await open({ shardBy: { Event: { key: 'at', strategy: byDate } } });
      await orm.schema.refresh();
      const em = orm.em.fork();
      const days = ['2023-03-01', '2023-12-31', '2024-01-01', '2024-07-04', '2025-01-01', '2025-06-30'];
      days.forEach((day, i) => em.create(Event, { id: i + 1, at: new Date(`${day}T12:00:00Z`), kind: i % 2 ? 'b' : 'a' }));
      await em.flush();
      expect(await tableRows(orm, 'event')).toEqual({ s0: ['1', '2'], s1: ['3', '4'], s2: ['5', '6'] });

      const reader = orm.em.fork();
      const recent = await log.during(() => reader.find(Event, { at: { $gte: new Date('2025-01-01') } }));
      expect(recent.shards).toEqual(['s2']);
      const spanning = await log.during(() =>
        reader.find(Event, { at: { $gte: new Date('2023-12-01'), $lt: new Date('2024-02-01') } }, { orderBy: { at: 'asc' } }),
      );
      expect(spanning.shards).toEqual(['s0', 's1']);
      expect(
        (await reader.find(Event, { at: { $gte: new Date('2023-12-01'), $lt: new Date('2024-02-01') } }, { orderBy: { at: 'asc' } })).map(e => e.id),
      ).toEqual([2, 3]);
      const either = await log.during(() => reader.count(Event, { $or: [{ at: { $lt: new Date('2023-06-01') } }, { at: { $gt: new Date('2025-03-01') } }] }));
      expect(either.shards).toEqual(['s0', 's2']);
      const other = await log.during(() => reader.count(Event, { kind: 'a' }));
      expect(new Set(other.shards)).toEqual(new Set(shardIds));
    });

    it('refuses a key below a closed first range', async () => {
      const orm = await open({ shardBy: { Event: { key: 'at', strategy: range([{ shard: 's0', from: new Date('2020-01-01') }]) } } });
      await orm.schema.refresh();
      const em = orm.em.fork();
      em.create(Event, { id: 1, at: new Date('2019-01-01'), kind: 'old' });
      const error = await refusal(() => em.flush());
      expect(error.code).toBe('INVALID_SHARD_KEY');
      expect(error.message).toMatch(/range strategy has no shard/);
    });
  });

  describe('jump', () => {
    it('places keys with no table and finds them on one shard', async () => {
      const byTenant = jump({ shards: [...shardIds] });
      const orm = await open({ shardBy: { Account: { key: 'tenantId', strategy: byTenant }, Invoice: { parent: 'account' } } });
      await orm.schema.refresh();
      const em = orm.em.fork();
      for (let i = 1; i <= 9; i++) {
        const account = em.create(Account, { id: i, tenantId: `t${i}`, name: `n${i}` });
        em.create(Invoice, { id: i, total: i, account });
      }
      await em.flush();
      const rows = await tableRows(orm, 'invoice');
      for (let i = 1; i <= 9; i++) {
        const shard = byTenant.shardFor(`t${i}`, { orm, entityName: 'Account' }) as string;
        expect(rows[shard]).toContain(String(i));
        const reader = orm.em.fork();
        const read = await log.during(() => reader.find(Invoice, { account: { tenantId: `t${i}` } }));
        expect(read.shards).toEqual([shard]);
      }
    });
  });
});
