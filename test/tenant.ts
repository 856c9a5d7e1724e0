import { DefaultLogger, type LogContext } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, tenant, type TenantStrategy, type TenantTemplate } from 'mikro-orm-sharding';
import { Account, Invoice } from './support/keyed.ts';
import type { Topology } from './support/topology.ts';

/** Queries as MikroORM logs them, each with the shard that ran it. */
class QueryCapture {
  readonly lines: { shard: string; sql: string }[] = [];

  factory = (options: ConstructorParameters<typeof DefaultLogger>[0]) => {
    const lines = this.lines;
    return new (class extends DefaultLogger {
      override logQuery(context: LogContext): void {
        lines.push({ shard: String(context.shard), sql: context.query ?? '' });
      }
    })(options);
  };

  /** The shards that ran a `select` while `run` ran. */
  async readers(run: () => Promise<unknown>): Promise<string[]> {
    const start = this.lines.length;
    await run();
    return [
      ...new Set(
        this.lines
          .slice(start)
          .filter(line => /^\s*select\b/i.test(line.sql))
          .map(line => line.shard),
      ),
    ].sort();
  }
}

/** What a run of the behaviour works on: a template, and a way to see what exists on the server (databases, schemas, files). */
export interface TenantSetting {
  readonly name: string;
  readonly topology: () => Topology;
  /** The template, given the topology (a SQLite directory, a PostgreSQL database prefix). */
  readonly template: (topology: Topology) => TenantTemplate;
  /** Shared options besides the topology's (the shared database of schema-per-tenant). */
  readonly shared?: (topology: Topology) => object;
  /** Makes what the tenants share (the shared database of schema-per-tenant). */
  readonly prepare?: (topology: Topology) => Promise<void>;
  /** The tenants' databases or schemas that exist now, sorted. */
  readonly existing: (topology: Topology) => Promise<string[]>;
  /** Drops what the tenants made. */
  readonly cleanUp: (topology: Topology) => Promise<void>;
}

/** A table of a tenant's shard, in its schema when it has one. */
export function tableOf(orm: ShardedMikroORM, shard: string, table: string): string {
  const schema = orm.shard(shard).config.get('schema');
  return schema === undefined ? table : `"${schema}".${table}`;
}

async function rowCounts(orm: ShardedMikroORM): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const id of orm.shardIds) {
    const [row] = await orm
      .shard(id)
      .em.fork()
      .getConnection()
      .execute(`select count(*) as c from ${tableOf(orm, id, 'account')}`);
    counts[id] = Number(row!.c);
  }
  return counts;
}

/** `tenant()`: one shard per tenant, made on demand from a template (see docs/strategies.md). */
export function tenantBehaviour(setting: TenantSetting): void {
  describe(`tenant() with ${setting.name}`, () => {
    let topology: Topology;
    let orm: ShardedMikroORM;
    let tenants: TenantStrategy;
    const capture = new QueryCapture();

    beforeAll(async () => {
      topology = setting.topology();
      await setting.prepare?.(topology);
      tenants = tenant({ template: setting.template(topology) });
      orm = await ShardedMikroORM.init({
        ...topology.shared,
        ...setting.shared?.(topology),
        entities: [Account, Invoice],
        shards: {},
        debug: ['query'],
        loggerFactory: capture.factory,
        shardBy: {
          Account: { key: 'tenantId', strategy: tenants },
          Invoice: { parent: 'account' },
        },
      });
    });
    afterAll(async () => {
      await orm?.close(true);
      await setting.cleanUp(topology);
      await topology?.dispose();
    });

    it('creates a tenant on its first write, and writes its rows to its own shard', async () => {
      const em = orm.em.fork();
      const acme = em.create(Account, { id: 1, tenantId: 'acme', name: 'Acme' });
      em.create(Invoice, { id: 10, total: 5, account: acme });
      em.create(Account, { id: 2, tenantId: 'globex', name: 'Globex' });
      await em.flush();
      expect([...orm.shardIds].sort()).toEqual(['tenant_acme', 'tenant_globex']);
      expect(tenants.shardIdOf('acme')).toBe('tenant_acme');
      expect(await rowCounts(orm)).toEqual({ tenant_acme: 1, tenant_globex: 1 });
      const [invoices] = await orm
        .shard('tenant_acme')
        .em.fork()
        .getConnection()
        .execute(`select count(*) as c from ${tableOf(orm, 'tenant_acme', 'invoice')}`);
      expect(Number(invoices!.c)).toBe(1);
      expect((await setting.existing(topology)).length).toBe(2);
    });

    it('creates a tenant once when its first writes arrive together', async () => {
      const before = capture.lines.length;
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const em = orm.em.fork();
          em.create(Account, { id: 100 + i, tenantId: 'initech', name: `Initech ${i}` });
          await em.flush();
        }),
      );
      expect(orm.shardIds.filter(id => id === 'tenant_initech')).toHaveLength(1);
      expect((await rowCounts(orm)).tenant_initech).toBe(8);
      const creates = capture.lines
        .slice(before)
        .filter(line => line.shard === 'tenant_initech' && /^create table (["`][\w-]+["`]\.)?["`]account["`]/im.test(line.sql));
      expect(creates, JSON.stringify(creates)).toHaveLength(1);
      expect((await setting.existing(topology)).length).toBe(3);
    });

    it('reads one tenant from its shard only', async () => {
      const em = orm.em.fork();
      const readers = await capture.readers(async () => {
        const found = await em.find(Account, { tenantId: 'acme' });
        expect(found.map(account => account.name)).toEqual(['Acme']);
      });
      expect(readers).toEqual(['tenant_acme']);
      const invoiceReaders = await capture.readers(async () => {
        expect(await em.fork().count(Invoice, { account: { tenantId: 'globex' } })).toBe(0);
      });
      expect(invoiceReaders).toEqual(['tenant_globex']);
    });

    it('merges a query without the tenant key over every tenant it knows', async () => {
      const readers = await capture.readers(async () => {
        const found = await orm.em.fork().find(Account, {}, { orderBy: { id: 'asc' }, limit: 3 });
        expect(found.map(account => account.id)).toEqual([1, 2, 100]);
        expect(await orm.em.fork().count(Account, {})).toBe(10);
      });
      expect(readers).toEqual(['tenant_acme', 'tenant_globex', 'tenant_initech']);
    });

    it('refuses a bad tenant id before anything is created or written', async () => {
      const shards = [...orm.shardIds];
      const counts = await rowCounts(orm);
      const existing = await setting.existing(topology);
      for (const bad of ['', 'a b', 'x'.repeat(64), "o'brien", '../etc', 'tenant;drop', -1, 1.5]) {
        const em = orm.em.fork();
        em.create(Account, { id: 900, tenantId: bad as string, name: 'Bad' });
        const error = await em.flush().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(ShardingError);
        expect((error as ShardingError).code).toBe('INVALID_SHARD_KEY');
        expect((error as ShardingError).message).toContain('Account');
        expect((error as ShardingError).message).toContain(String(bad).slice(0, 10));
      }
      await expect(orm.em.fork().find(Account, { tenantId: 'a b' })).rejects.toMatchObject({ code: 'INVALID_SHARD_KEY' });
      expect(orm.shardIds).toEqual(shards);
      expect(await rowCounts(orm)).toEqual(counts);
      expect(await setting.existing(topology)).toEqual(existing);
    });

    it('finds nothing for a tenant that has no rows, on its own shard', async () => {
      const readers = await capture.readers(async () => {
        expect(await orm.em.fork().find(Account, { tenantId: 'hooli' })).toEqual([]);
      });
      expect(readers).toEqual(['tenant_hooli']);
    });

    it('refuses a query without the tenant key with requireShardKey', async () => {
      const strict = await ShardedMikroORM.init({
        ...topology.shared,
        ...setting.shared?.(topology),
        entities: [Account, Invoice],
        shards: {},
        requireShardKey: true,
        shardBy: { Account: { key: 'tenantId', strategy: tenants }, Invoice: { parent: 'account' } },
      });
      try {
        expect(await tenants.register(strict, 'acme')).toBe('tenant_acme');
        await tenants.register(strict, 'globex');
        await expect(strict.em.fork().find(Account, {})).rejects.toMatchObject({ code: 'SHARD_KEY_REQUIRED' });
        expect((await strict.em.fork().find(Account, { tenantId: 'globex' })).map(account => account.name)).toEqual(['Globex']);
      } finally {
        await strict.close(true);
      }
    });
  });
}
