/**
 * Shards whose tables existed before the fleet (seed 001, "Automap multiple databases with Flask-SQLAlchemy": "I have
 * an app currently working fine Automapping one database, but I need to access another database now as well"):
 * entities that fit one shard are used on all, after `compareShardSchemas` has named the shards whose schema differs.
 * The tables are made with raw SQL, not by MikroORM, as a legacy database's would be.
 */
import { defineEntity, p } from '@mikro-orm/core';
import { compareShardSchemas, ShardedMikroORM } from 'mikro-orm-sharding';
import { createTestShards, type TestShards } from 'mikro-orm-sharding/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL } from './support/topology.ts';

/** What the entity generator would write from shard s0's `customer` table. */
const CustomerSchema = defineEntity({
  name: 'Customer',
  tableName: 'customer',
  properties: {
    id: p.integer().primary().autoincrement(false),
    name: p.string().length(100),
    email: p.string().length(200).nullable(),
  },
});
class Customer extends CustomerSchema.class {}
CustomerSchema.setClass(Customer);

const LEGACY: Record<string, string[]> = {
  s0: ['create table customer (id integer not null primary key, name varchar(100) not null, email varchar(200) null)'],
  // A shard that never got the email column.
  s1: ['create table customer (id integer not null primary key, name varchar(100) not null)'],
  // A shard with a leftover table and a nullable name.
  s2: [
    'create table customer (id integer not null primary key, name varchar(100) null, email varchar(200) null)',
    'create table legacy_audit (id integer not null primary key, note varchar(50) null)',
  ],
};

describe.each(['sqlite', 'postgresql'] as const)('existing databases on %s', driver => {
  let shards: TestShards;
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    shards = await createTestShards({ driver, count: 3, clientUrl: PG_URL });
    orm = await ShardedMikroORM.init({ ...shards.options, entities: [Customer], shardChooser: ({ entity }) => `s${(entity as Customer).id % 3}` });
    for (const [id, statements] of Object.entries(LEGACY)) {
      for (const sql of statements) await orm.shard(id).em.fork().getConnection().execute(sql);
    }
  });

  afterAll(async () => {
    await orm?.close(true);
    await shards?.dispose();
  });

  it('names the shards whose schema differs from the reference, and how', async () => {
    const comparison = await compareShardSchemas(orm, { reference: 's0' });
    expect(comparison.reference).toBe('s0');
    expect(comparison.same).toEqual(['s0']);
    expect(comparison.differing.map(d => d.shard)).toEqual(['s1', 's2']);
    const [s1, s2] = comparison.differing;
    expect(s1).toMatchObject({ missingTables: [], extraTables: [], changedTables: [{ table: 'customer', missingColumns: ['email'], extraColumns: [] }] });
    expect(s1!.sql).toMatch(/email/);
    expect(s2).toMatchObject({ missingTables: [], extraTables: ['legacy_audit'] });
    expect(s2!.changedTables).toEqual([
      { table: 'customer', missingColumns: [], extraColumns: [], changedColumns: [{ column: 'name', changes: ['nullable'] }], otherChanges: [] },
    ]);
    expect(comparison.summary).toBe(['s1: customer lacks email', 's2: extra tables legacy_audit; customer.name differs in nullable'].join('\n'));
  });

  it('compares a subset, against another reference', async () => {
    const comparison = await compareShardSchemas(orm, { reference: 's1', shards: ['s0'] });
    expect(comparison.same).toEqual(['s1']);
    expect(comparison.differing.map(d => [d.shard, d.changedTables.map(t => t.extraColumns)])).toEqual([['s0', [['email']]]]);
    await expect(compareShardSchemas(orm, { reference: 'nope' })).rejects.toMatchObject({ code: 'UNKNOWN_SHARD' });
  });

  it('aligns a shard with the SQL it reports; then the entities work on every shard', async () => {
    const before = await compareShardSchemas(orm);
    const s1 = before.differing.find(d => d.shard === 's1')!;
    await orm.shard('s1').em.fork().getConnection().execute(s1.sql);
    const after = await compareShardSchemas(orm, { shards: ['s1'] });
    expect(after).toMatchObject({ same: ['s0', 's1'], differing: [] });
    expect(after.summary).toBe('Every shard has the schema of "s0" (s0, s1).');

    const em = orm.em.fork();
    for (const id of [3, 4, 5]) em.create(Customer, { id, name: `c${id}`, email: `c${id}@example.com` });
    await em.flush();
    const read = orm.em.fork();
    const found = await read.find(Customer, {}, { orderBy: { id: 'asc' } });
    expect(found.map(c => [c.id, c.email, read.shardOf(c)])).toEqual([
      [3, 'c3@example.com', 's0'],
      [4, 'c4@example.com', 's1'],
      [5, 'c5@example.com', 's2'],
    ]);
  });
});
