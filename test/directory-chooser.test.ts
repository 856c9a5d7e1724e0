import { readFileSync } from 'node:fs';
import { NotFoundError } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, type ShardedEntityManager, type ShardId } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';
import { Invoice, openTenantFleet, TenantHome } from './samples/directory-table.ts';

// A shard chooser that looks the shard up through `em` (a directory table): flush() used to place the pending
// entities again for the chooser's own read, which called the chooser again, forever.

/** The ```ts block after a heading of docs/choosers.md. */
function docBlock(heading: string, nth = 0): string {
  const doc = readFileSync(new URL('../docs/choosers.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf(`\n${heading}\n`));
  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)];
  return blocks[nth]![1]!.trim();
}

describe('the directory-table recipe of docs/choosers.md', () => {
  it('shows exactly the sample this test runs', () => {
    expect(docBlock('### A directory table')).toBe(readFileSync(new URL('./samples/directory-table.ts', import.meta.url), 'utf8').trim());
    const source = readFileSync(new URL(import.meta.url), 'utf8');
    const [, usage = ''] = /\n {6}\/\/ doc:usage-start\n([\s\S]*?)\n {6}\/\/ doc:usage-end\n/.exec(source) ?? [];
    expect(usage).toMatch(/openTenantFleet\(\)[\s\S]*reads t1 only/);
    expect(docBlock('### A directory table', 1)).toBe(usage.replace(/^ {6}/gm, '').trim());
  });

  it('runs: each new invoice goes to its tenant’s shard, and tenant queries read that shard only', { timeout: 10_000 }, async () => {
    const topology = sqliteTopology();
    const cwd = process.cwd();
    // The sample's SQLite files go to the current directory, as they do where the docs' samples run.
    process.chdir(topology.database('x').dbName!.replace(/\/x\.db$/, ''));
    try {
      // doc:usage-start
      const tenants = await openTenantFleet(); // SQLite files in the current directory
      await tenants.schema.create();

      const em = tenants.em.fork();
      em.create(TenantHome, { tenant: 'acme', shard: 't1' });
      em.create(TenantHome, { tenant: 'globex', shard: 't0' });
      await em.flush(); // the directory first: a chooser reads what is written, not what its own flush places

      em.create(Invoice, { id: 1, tenant: 'acme', total: 120 });
      em.create(Invoice, { id: 2, tenant: 'globex', total: 80 });
      em.create(Invoice, { id: 3, tenant: 'acme', total: 45 });
      await em.flush(); // acme's home is read once, then found in the identity map

      const acme = await em.find(Invoice, { tenant: 'acme' }, { orderBy: { id: 'asc' } }); // reads t1 only
      await tenants.close();
      // doc:usage-end
      expect(acme.map(invoice => invoice.id)).toEqual([1, 3]);
      await using again = await openTenantFleet();
      expect(await allRows(again)).toEqual({ main: { tenant_home: 2 }, t0: { invoice: 1 }, t1: { invoice: 2 } });
    } finally {
      process.chdir(cwd);
    }
    await topology.dispose();
  });
});

describe('a shard chooser that reads through em', () => {
  let topology: Topology;
  let orm: ShardedMikroORM;
  const calls: string[] = [];
  let lookup: (em: ShardedEntityManager, tenant: string) => Promise<ShardId>;

  beforeAll(async () => {
    topology = sqliteTopology();
    orm = await ShardedMikroORM.init({
      ...topology.shared,
      shards: {
        main: { ...topology.database('main'), entities: [TenantHome] },
        t0: { ...topology.database('t0'), entities: [Invoice] },
        t1: { ...topology.database('t1'), entities: [Invoice] },
      },
      shardChooser: async ({ entity, em }) => {
        if (entity instanceof TenantHome) return 'main';
        const { id, tenant } = entity as Invoice;
        calls.push(`Invoice#${id}`);
        // A loop shows as a flood of calls; fail fast instead of hanging the suite.
        if (calls.length > 50) throw new Error('the shard chooser is called in a loop');
        return lookup(em, tenant);
      },
      idChooser: ({ entityName }) => (entityName === 'TenantHome' ? ['main'] : ['t0', 't1']),
      queryChooser: ({ entityName }) => (entityName === 'TenantHome' ? ['main'] : ['t0', 't1']),
    });
    await orm.schema.create();
    const em = orm.em.fork();
    em.create(TenantHome, { tenant: 'acme', shard: 't1' });
    em.create(TenantHome, { tenant: 'globex', shard: 't0' });
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close();
    await topology?.dispose();
  });

  const byKey = async (em: ShardedEntityManager, tenant: string) => (await em.findOneOrFail(TenantHome, tenant)).shard;
  const byQuery = async (em: ShardedEntityManager, tenant: string) => (await em.find(TenantHome, { tenant }))[0]!.shard;
  const byCount = async (em: ShardedEntityManager, tenant: string) => ((await em.count(TenantHome, { tenant, shard: 't0' })) > 0 ? 't0' : 't1');

  it.each([
    ['findOneOrFail by primary key', byKey],
    ['find by a condition', byQuery],
    ['count', byCount],
  ])('flush() places each entity once when the chooser reads with %s', async (_, read) => {
    lookup = read;
    calls.length = 0;
    const before = await allRows(orm);
    const em = orm.em.fork();
    const id = before.t0!.invoice! + before.t1!.invoice! + 1;
    em.create(Invoice, { id, tenant: 'acme', total: 1 });
    em.create(Invoice, { id: id + 1, tenant: 'globex', total: 2 });
    await em.flush();
    expect(calls).toEqual([`Invoice#${id}`, `Invoice#${id + 1}`]);
    expect(em.shardOf(await em.findOneOrFail(Invoice, id))).toBe('t1');
    const after = await allRows(orm);
    expect([after.t0!.invoice! - before.t0!.invoice!, after.t1!.invoice! - before.t1!.invoice!, after.main]).toEqual([1, 1, before.main]);
  });

  it('places pending entities for a query the same way (the chooser reads while a query waits)', async () => {
    lookup = byKey;
    calls.length = 0;
    const em = orm.em.fork();
    em.create(Invoice, { id: 100, tenant: 'globex', total: 3 });
    const found = await em.find(Invoice, { total: 3 });
    expect(found.map(invoice => [invoice.id, em.shardOf(invoice)])).toEqual([[100, 't0']]);
    expect(calls).toEqual(['Invoice#100']);
  });

  it('does not see the entities being placed: a directory entry made in the same flush is not found, and nothing is written', async () => {
    lookup = byKey;
    const before = await allRows(orm);
    const em = orm.em.fork();
    em.create(TenantHome, { tenant: 'initech', shard: 't0' });
    em.create(Invoice, { id: 200, tenant: 'initech', total: 4 });
    const error = await em.flush().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShardingError);
    expect(error).toMatchObject({ code: 'CHOOSER_FAILED', entity: 'Invoice#200' });
    expect((error as ShardingError).cause).toBeInstanceOf(NotFoundError);
    expect(await allRows(orm)).toEqual(before);
  });

  it('does not auto-flush while placing: what an earlier query placed waits until every entity has its shard', async () => {
    lookup = byQuery; // a query on TenantHome would auto-flush main's pending TenantHome
    const before = await allRows(orm);
    const em = orm.em.fork();
    em.create(TenantHome, { tenant: 'umbrella', shard: 't1' });
    await em.count(Invoice); // places the new TenantHome on main's fork, unwritten (no Invoice pending there)
    em.create(Invoice, { id: 300, tenant: 'acme', total: 5 });
    em.create(Invoice, { id: 301, tenant: 'nobody', total: 6 }); // its lookup fails
    await expect(em.flush()).rejects.toMatchObject({ code: 'CHOOSER_FAILED', entity: 'Invoice#301' });
    expect(await allRows(orm)).toEqual(before);
  });

  it('refuses flush() inside the chooser, writing nothing', async () => {
    const before = await allRows(orm);
    lookup = async (em, tenant) => {
      await em.flush();
      return byKey(em, tenant);
    };
    const em = orm.em.fork();
    em.create(Invoice, { id: 400, tenant: 'acme', total: 7 });
    const error = (await em.flush().catch((e: unknown) => e)) as ShardingError;
    expect(error).toBeInstanceOf(ShardingError);
    expect(error.code).toBe('CHOOSER_FAILED');
    expect(error.message).toMatch(/em\.flush\(\) was called inside a chooser.*must not flush it/);
    expect(await allRows(orm)).toEqual(before);
  });

  it('still lets two flushes of one entity manager run side by side', async () => {
    lookup = byKey;
    const em = orm.em.fork();
    em.create(Invoice, { id: 500, tenant: 'acme', total: 8 });
    await Promise.all([em.flush(), em.flush()]);
    expect(await orm.em.fork().count(Invoice, { id: 500 })).toBe(1);
  });
});
