/**
 * Entities reflected at run time from one shard's existing tables (seed 001, "Automap multiple databases with
 * Flask-SQLAlchemy": automap reflects the tables into classes). The tables are made with raw SQL on every shard, as
 * a legacy database's would be; the entities are read from s0 and used on all.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Dictionary, EntityClass } from '@mikro-orm/core';
import { compareShardSchemas, generateEntitySource, reflectEntities, ShardedMikroORM, type ReflectedEntities } from 'mikro-orm-sharding';
import { createTestShards, type TestShards } from 'mikro-orm-sharding/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './support/tools.ts';
import { PG_URL } from './support/topology.ts';

const exec = promisify(execFile);

/** Writes generated files to a project of their own (MikroORM linked in) and type-checks it with tsc, strict. */
async function compile(files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'reflected-source-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(join(repoRoot, 'node_modules/@mikro-orm'), join(dir, 'node_modules/@mikro-orm'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const compilerOptions = { strict: true, module: 'nodenext', target: 'es2024', noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts'] }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await exec(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json', '--pretty', 'false'], { cwd: dir }).catch((error: { stdout?: string }) => {
    throw new Error(`tsc failed on the generated source:\n${error.stdout}\n${Object.values(files).join('\n')}`);
  });
  return dir;
}

const DDL = {
  sqlite: [
    `create table customer (id integer not null primary key autoincrement, name varchar(100) not null unique, email varchar(200), balance numeric(10,2) not null default 0,
      score real, vip boolean not null default 0, joined_at datetime, born date, meta json, avatar blob, ext_id uuid, visits bigint not null default 0)`,
    'create table purchase (id integer not null primary key, customer_id integer not null references customer (id), total numeric(10,2) not null, note text)',
    `create table purchase_line (purchase_id integer not null references purchase (id), line_no integer not null, qty integer not null default 1,
      primary key (purchase_id, line_no))`,
    'create table audit_log (at datetime, message text)',
    'create table place (id integer not null primary key, shape geometry)',
  ],
  postgresql: [
    `create table customer (id serial primary key, name varchar(100) not null unique, email varchar(200), balance numeric(10,2) not null default 0,
      score double precision, vip boolean not null default false, joined_at timestamptz, born date, meta jsonb, avatar bytea, ext_id uuid, visits bigint not null default 0)`,
    'create table purchase (id integer not null primary key, customer_id integer not null references customer (id), total numeric(10,2) not null, note text)',
    `create table purchase_line (purchase_id integer not null references purchase (id), line_no integer not null, qty integer not null default 1,
      primary key (purchase_id, line_no))`,
    'create table audit_log (at timestamptz, message text)',
    'create table place (id integer not null primary key, shape point)',
  ],
} as const;

/** The rows each shard already holds: customer id % 3 is its shard. */
const ROWS: Record<string, string[]> = {
  s0: [
    `insert into customer (id, name, balance, vip, visits) values (3, 'Cleo', 12.5, true, 7)`,
    `insert into purchase (id, customer_id, total) values (30, 3, 12.50)`,
    `insert into purchase_line (purchase_id, line_no, qty) values (30, 1, 2), (30, 2, 1)`,
  ],
  s1: [`insert into customer (id, name) values (1, 'Ada'), (4, 'Dan')`],
  s2: [`insert into customer (id, name) values (2, 'Bo')`],
};

const customerIdOf = (entity: Dictionary): number =>
  entity.constructor.name === 'Customer' ? entity.id : entity.constructor.name === 'Purchase' ? entity.customer.id : entity.purchase.customer.id;

describe.each(['sqlite', 'postgresql'] as const)('reflected entities on %s', driver => {
  let shards: TestShards;
  let legacy: ShardedMikroORM;
  let reflected: ReflectedEntities;
  let orm: ShardedMikroORM;

  const raw = async (shard: string, sql: string): Promise<Dictionary[]> => legacy.shard(shard).em.fork().getConnection().execute(sql);
  const count = async (table: string): Promise<number> => {
    let total = 0;
    for (const id of legacy.shardIds) total += Number((await raw(id, `select count(*) as n from ${table}`))[0]!.n);
    return total;
  };

  beforeAll(async () => {
    shards = await createTestShards({ driver, count: 3, clientUrl: PG_URL });
    legacy = await ShardedMikroORM.init({ ...shards.options, entities: [], discovery: { warnWhenNoEntities: false }, shardChooser: () => 's0' });
    for (const id of legacy.shardIds) {
      for (const sql of DDL[driver]) await raw(id, sql);
      for (const sql of ROWS[id]!) await raw(id, sql);
    }
    // A shard whose schema drifted: a column nobody else has.
    await raw('s2', 'alter table customer add column legacy_flag integer');
    reflected = await reflectEntities(legacy, { shard: 's0' });
    orm = await ShardedMikroORM.init({
      ...shards.options,
      entities: [...reflected.entities],
      shardChooser: ({ entity }) => `s${customerIdOf(entity as Dictionary) % 3}`,
    });
  });

  afterAll(async () => {
    await orm?.close(true);
    await legacy?.close(true);
    await shards?.dispose();
  });

  it('maps every table with a primary key and known types, and reports the others', () => {
    expect(reflected.shard).toBe('s0');
    expect(reflected.definitions.map(d => [d.name, d.tableName])).toEqual([
      ['Customer', 'customer'],
      ['Purchase', 'purchase'],
      ['PurchaseLine', 'purchase_line'],
    ]);
    expect(reflected.skipped.map(s => s.table)).toEqual(['audit_log', 'place']);
    expect(reflected.skipped[0]!.reason).toMatch(/no primary key/);
    expect(reflected.skipped[1]!.reason).toMatch(/column "shape" has type (geometry|point)/);
    expect(() => reflected.entity('audit_log')).toThrow(/table "audit_log" was not mapped: it has no primary key/);
    expect(() => reflected.entity('nope')).toThrow(/no table "nope" was reflected/);
  });

  it('reads the column types, keys, defaults and relations', () => {
    const props = (table: string) => Object.fromEntries(reflected.definitions.find(d => d.tableName === table)!.properties.map(prop => [prop.name, prop]));
    const customer = props('customer');
    expect(Object.keys(customer)).toEqual([
      'id',
      'name',
      'email',
      'balance',
      'score',
      'vip',
      'joinedAt',
      'born',
      'meta',
      'avatar',
      'extId',
      'visits',
      'purchaseCollection',
    ]);
    expect(Object.fromEntries(Object.entries(customer).map(([name, prop]) => [name, prop.builder]))).toEqual({
      id: 'integer',
      name: 'string',
      email: 'string',
      balance: 'decimal',
      score: 'double',
      vip: 'boolean',
      joinedAt: 'datetime',
      born: 'date',
      meta: 'json',
      avatar: 'blob',
      extId: 'uuid',
      visits: 'bigint',
      purchaseCollection: 'oneToMany',
    });
    expect(customer.id!.calls).toContainEqual(['primary']);
    expect(customer.id!.calls).not.toContainEqual(['autoincrement', false]);
    expect(customer.name!.calls).toContainEqual(['length', 100]);
    // MikroORM's SQLite introspection does not read the index SQLite makes for an inline UNIQUE.
    expect(customer.name!.calls.some(([method]) => method === 'unique')).toBe(driver === 'postgresql');
    expect(customer.email!.calls).toContainEqual(['nullable']);
    expect(customer.balance!.calls).toEqual(
      expect.arrayContaining([
        ['precision', 10],
        ['scale', 2],
      ]),
    );
    expect(customer.vip!.calls).toContainEqual(['default', false]);
    expect(customer.purchaseCollection).toMatchObject({ target: 'Purchase', calls: [['mappedBy', 'customer']] });
    const purchase = props('purchase');
    expect(purchase.customer).toMatchObject({ builder: 'manyToOne', target: 'Customer' });
    expect(purchase.id!.calls).toContainEqual(['autoincrement', false]);
    const line = props('purchase_line');
    expect(line.purchase).toMatchObject({ builder: 'manyToOne', target: 'Purchase' });
    expect(line.purchase!.calls).toContainEqual(['primary']);
    expect(line.lineNo!.calls).toEqual(expect.arrayContaining([['fieldName', 'line_no'], ['primary']].slice(1)));
  });

  it('fits the tables it was read from: MikroORM sees nothing to change on s0 (but the skipped tables)', async () => {
    expect(await orm.shard('s0').schema.getUpdateSchemaSQL({ wrap: false, dropTables: false })).toBe('');
  });

  it('compareShardSchemas names the shard whose schema differs', async () => {
    const comparison = await compareShardSchemas(legacy, { reference: 's0' });
    expect(comparison.same).toEqual(['s0', 's1']);
    expect(comparison.summary).toBe('s2: customer has extra legacy_flag');
  });

  it('reads the existing rows of every shard through the sharded entity manager', async () => {
    const Customer = reflected.entity('customer');
    const Purchase = reflected.entity('purchase');
    const em = orm.em.fork();
    const customers = await em.find(Customer, {}, { orderBy: { id: 'asc' } });
    expect(customers.map(c => [c.id, c.name, em.shardOf(c)])).toEqual([
      [1, 'Ada', 's1'],
      [2, 'Bo', 's2'],
      [3, 'Cleo', 's0'],
      [4, 'Dan', 's1'],
    ]);
    expect(customers.length).toBe(await count('customer'));
    const cleo = customers[2]!;
    // SQLite keeps a numeric as the number it is (12.5); PostgreSQL keeps its scale.
    expect([cleo.balance, cleo.vip, cleo.visits, cleo.email]).toEqual([driver === 'sqlite' ? '12.5' : '12.50', true, 7n, null]);
    const [purchase] = await em.find(Purchase, { id: 30 }, { populate: ['customer'] });
    expect(purchase!.customer.name).toBe('Cleo');
    const lines = await em.find(reflected.entity('purchase_line'), { purchase: 30 }, { orderBy: { lineNo: 'asc' } });
    expect(lines.map(l => [l.lineNo, l.qty])).toEqual([
      [1, 2],
      [2, 1],
    ]);
  });

  it('writes new rows, relations and every type to the shard the chooser picks', async () => {
    const Customer = reflected.entity('customer');
    const before = { customer: await count('customer'), purchase: await count('purchase'), line: await count('purchase_line') };
    const em = orm.em.fork();
    const joinedAt = new Date('2024-05-06T07:08:09.000Z');
    const eve = em.create(Customer, {
      id: 5,
      name: 'Eve',
      email: 'eve@example.com',
      balance: '3.25',
      score: 1.5,
      vip: true,
      joinedAt,
      born: '1990-01-02',
      meta: { tags: ['a'] },
      avatar: Buffer.from([1, 2, 3]),
      extId: '6f1c2a34-0000-4000-8000-000000000001',
      visits: 12345678901n,
    });
    const purchase = em.create(reflected.entity('purchase'), { id: 50, customer: eve, total: '9.99' });
    em.create(reflected.entity('purchase_line'), { purchase, lineNo: 1, qty: 3 });
    await em.flush();
    expect(await count('customer')).toBe(before.customer + 1);
    expect(await count('purchase')).toBe(before.purchase + 1);
    expect(await count('purchase_line')).toBe(before.line + 1);
    expect((await raw('s2', 'select count(*) as n from purchase_line where purchase_id = 50'))[0]!.n).toEqual(driver === 'sqlite' ? 1 : '1');

    const read = orm.em.fork();
    const found = await read.findOneOrFail(Customer, 5, { populate: ['purchaseCollection'] });
    expect(read.shardOf(found)).toBe('s2');
    expect(found).toMatchObject({ name: 'Eve', balance: '3.25', score: 1.5, vip: true, born: '1990-01-02', meta: { tags: ['a'] }, visits: 12345678901n });
    expect(found.joinedAt).toEqual(joinedAt);
    expect(Buffer.from(found.avatar)).toEqual(Buffer.from([1, 2, 3]));
    expect(found.purchaseCollection.getItems().map((p: Dictionary) => p.id)).toEqual([50]);
  });

  it("reads from one database's options, and refuses tables it does not have", async () => {
    const options = { driver: shards.options.driver!, dbName: shards.options.shards.s1!.dbName!, ...(driver === 'postgresql' ? { clientUrl: PG_URL } : {}) };
    const one = await reflectEntities(options, { tables: ['customer'] });
    expect(one.shard).toBeUndefined();
    expect(one.definitions.map(d => d.name)).toEqual(['Customer']);
    expect(one.definitions[0]!.properties.map(prop => prop.name)).not.toContain('purchaseCollection');
    await expect(reflectEntities(options, { tables: ['customer', 'nope'] })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringMatching(/"nope"/),
    });
    await expect(reflectEntities(legacy, { shard: 'nope' })).rejects.toMatchObject({ code: 'UNKNOWN_SHARD' });
  });

  it('writes the same entities as TypeScript source that compiles and works on every shard', async () => {
    const perEntity = generateEntitySource(reflected, { layout: 'file-per-entity', importExtension: '.ts' });
    expect(Object.keys(perEntity)).toEqual(['Customer.ts', 'Purchase.ts', 'PurchaseLine.ts', 'index.ts']);
    expect(perEntity['Purchase.ts']).toContain("import { Customer } from './Customer.ts';");
    rmSync(await compile(perEntity), { recursive: true, force: true });

    const files = generateEntitySource(reflected);
    const source = files['entities.ts']!;
    expect(source).toMatch(/^\/\/ Generated by mikro-orm-sharding's generateEntitySource\(\) from the tables of shard 's0'/);
    expect(source).toContain("// Not mapped: table 'audit_log': it has no primary key");
    expect(source).toContain("export const CustomerSchema = defineEntity({\n  name: 'Customer',\n  tableName: 'customer',");
    expect(source).toContain('    name: p.string().length(100)');
    expect(source).toContain("    purchaseCollection: () => p.oneToMany(Purchase).mappedBy('customer'),");
    expect(source).toContain('export const entities = [Customer, Purchase, PurchaseLine];');
    const dir = await compile(files);
    try {
      const generated = (await import(pathToFileURL(join(dir, 'entities.ts')).href)) as { entities: EntityClass<Dictionary>[] };
      const [Customer] = generated.entities;
      await using saved = await ShardedMikroORM.init({
        ...shards.options,
        entities: generated.entities,
        shardChooser: ({ entity }) => `s${customerIdOf(entity as Dictionary) % 3}`,
      });
      expect(await saved.shard('s0').schema.getUpdateSchemaSQL({ wrap: false, dropTables: false })).toBe('');
      const em = saved.em.fork();
      em.create(Customer!, { id: 7, name: 'Gus' });
      await em.flush();
      expect((await raw('s1', 'select name from customer where id = 7'))[0]).toEqual({ name: 'Gus' });
      const all = await saved.em.fork().find(Customer!, {}, { orderBy: { id: 'asc' } });
      expect(all.map(c => c.name)).toContain('Gus');
      expect(all.length).toBe(await count('customer'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
