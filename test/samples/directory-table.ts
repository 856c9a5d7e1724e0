import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type QueryChooser, type ShardChooser, type ShardedEntityManager } from 'mikro-orm-sharding';

/** The directory: which shard holds each tenant's rows. It lives in `main`; the tenants live in `t0` and `t1`. */
const TenantHomeSchema = defineEntity({
  name: 'TenantHome',
  properties: { tenant: p.string().primary(), shard: p.string() },
});
export class TenantHome extends TenantHomeSchema.class {}
TenantHomeSchema.setClass(TenantHome);

const InvoiceSchema = defineEntity({
  name: 'Invoice',
  properties: { id: p.integer().primary().autoincrement(false), tenant: p.string(), total: p.integer() },
});
export class Invoice extends InvoiceSchema.class {}
InvoiceSchema.setClass(Invoice);

const tenantShards = ['t0', 't1'];

/** A tenant's shard, read through the entity manager that asks: its identity map first, then `main`. */
async function homeOf(em: ShardedEntityManager, tenant: string): Promise<string> {
  const home = await em.findOneOrFail(TenantHome, tenant);
  return home.shard;
}

const shardChooser: ShardChooser = ({ entity, em }) => (entity instanceof TenantHome ? 'main' : homeOf(em, (entity as Invoice).tenant));

const queryChooser: QueryChooser = async ({ entityName, where, em }) => {
  if (entityName === 'TenantHome') return ['main'];
  const tenant = (where as { tenant?: unknown }).tenant;
  return typeof tenant === 'string' ? [await homeOf(em, tenant)] : tenantShards;
};

export function openTenantFleet(): Promise<ShardedMikroORM> {
  return ShardedMikroORM.init({
    driver: SqliteDriver,
    shards: {
      main: { dbName: 'main.db', entities: [TenantHome] },
      t0: { dbName: 't0.db', entities: [Invoice] },
      t1: { dbName: 't1.db', entities: [Invoice] },
    },
    shardChooser,
    idChooser: ({ entityName }) => (entityName === 'TenantHome' ? ['main'] : tenantShards),
    queryChooser,
  });
}
