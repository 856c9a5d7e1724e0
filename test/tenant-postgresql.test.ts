import { MikroORM } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { tenantBehaviour } from './tenant.ts';
import { adminQuery, dropDatabases, PG_URL, postgresTopology, type Topology } from './support/topology.ts';

/** The tenants' databases: the topology's name with `{tenant}` in it. */
const databasePattern = (topology: Topology) => String(topology.database('{tenant}').dbName);
const sharedDatabase = (topology: Topology) => String(topology.database('shared').dbName);

async function tenantDatabases(topology: Topology): Promise<string[]> {
  const prefix = databasePattern(topology).replace('{tenant}', '');
  const [rows] = await adminQuery([[`select datname from pg_database where starts_with(datname, ?) order by datname`, [prefix]]]);
  return rows!.map(row => String(row.datname));
}

/** Runs SQL on the database the tenants' schemas share. */
async function onShared(topology: Topology, sql: string): Promise<Record<string, unknown>[]> {
  const shared = await MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: PG_URL,
    dbName: sharedDatabase(topology),
    entities: [],
    discovery: { warnWhenNoEntities: false },
  });
  try {
    return await shared.em.getConnection().execute(sql);
  } finally {
    await shared.close(true);
  }
}

const tenantSchemas = async (topology: Topology) =>
  (await onShared(topology, `select schema_name from information_schema.schemata where schema_name like 'ts\\_%' order by schema_name`)).map(row =>
    String(row.schema_name),
  );

tenantBehaviour({
  name: 'a PostgreSQL database per tenant',
  topology: postgresTopology,
  template: topology => ({ database: databasePattern(topology) }),
  existing: tenantDatabases,
  cleanUp: async topology => dropDatabases(await tenantDatabases(topology)),
});

tenantBehaviour({
  name: 'a PostgreSQL schema per tenant in one database',
  topology: postgresTopology,
  template: () => ({ schema: 'ts_{tenant}' }),
  shared: topology => ({ dbName: sharedDatabase(topology) }),
  // The database the tenants share is the application's: it exists before any tenant.
  prepare: async topology => void (await adminQuery([`create database "${sharedDatabase(topology)}"`])),
  existing: tenantSchemas,
  cleanUp: async topology => {
    for (const schema of await tenantSchemas(topology)) {
      await onShared(topology, `drop schema "${schema}" cascade`);
    }
  },
});
