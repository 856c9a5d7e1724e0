import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ShardedMikroORM, tenant } from 'mikro-orm-sharding';
import { Account, Invoice } from './support/keyed.ts';
import { tenantBehaviour } from './tenant.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

/** The SQLite files of the topology's directory: `{tenant}` in a shard's path names the tenant's file. */
const fileOf = (topology: Topology) => String(topology.database('{tenant}').dbName);

tenantBehaviour({
  name: 'a SQLite file per tenant',
  topology: sqliteTopology,
  template: topology => ({ database: fileOf(topology) }),
  existing: async topology =>
    readdirSync(dirname(fileOf(topology)))
      .filter(file => file.endsWith('.db'))
      .sort(),
  // The topology removes its directory.
  cleanUp: async () => undefined,
});

describe('tenant() options', () => {
  it('refuses a template it cannot make shards from, and schemas on SQLite', async () => {
    for (const template of [undefined, {}, { database: 'app.db' }, { schema: 42 }, { database: 'a_{tenant}', schema: 's_{tenant}' }]) {
      expect(() => tenant({ template: template as never })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    }
    expect(() => tenant({ template: { database: '{tenant}.db' }, prefix: 'a-b' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    const topology = sqliteTopology();
    try {
      const init = ShardedMikroORM.init({
        ...topology.shared,
        entities: [Account, Invoice],
        shards: {},
        shardBy: { Account: { key: 'tenantId', strategy: tenant({ template: { schema: 't_{tenant}' } }) } },
      });
      await expect(init).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('needs PostgreSQL') });
    } finally {
      await topology.dispose();
    }
  });
});
