import { defineEntity, p, UniqueConstraintViolationException } from '@mikro-orm/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { copyBroadcastRows, range, shardFailureOf, ShardedMikroORM, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { logged, QueryLog } from './support/keyed.ts';
import { Country, Customer, Label, movingEntities, Note } from './support/moving.ts';
import { refusal } from './support/refusal.ts';
import { topologies, type Topology } from './support/topology.ts';

// Broadcast entities on real databases: written to every shard in one call (counted with raw SQL on each), read
// from one shard (queries counted per shard), referenced from any shard with joins that stay on it.

const byTier = () => range([{ shard: 's0' }, { shard: 's1', from: 100 }, { shard: 's2', from: 200 }]);

/** Raw rows of a table on every shard, one column of each, sorted. */
async function column(orm: ShardedMikroORM, table: string, name: string): Promise<Record<string, string[]>> {
  const rows: Record<string, string[]> = {};
  for (const id of orm.shardIds) {
    const found: Record<string, unknown>[] = await orm.shard(id).em.fork().getConnection().execute(`select ${name} as v from "${table}"`);
    rows[id] = found.map(row => String(row.v)).sort();
  }
  return rows;
}

const everywhere = (values: string[]) => ({ s0: values, s1: values, s2: values });

describe.each(['sqlite', 'postgresql'] as const)('broadcast entities on %s', driver => {
  let topology: Topology;
  let orm: ShardedMikroORM;
  const log = new QueryLog();

  const options = (): ShardedMikroORMOptions =>
    ({
      ...topology.shared,
      entities: movingEntities,
      shards: logged(topology.shards(3), log),
      pool: { min: 0, max: 3 },
      shardBy: {
        Customer: { key: 'tier', strategy: byTier() },
        Country: { broadcast: true },
        Label: { broadcast: true },
      },
      shardChooser: ({ entity }) => (entity instanceof Note ? 's0' : undefined),
    }) as ShardedMikroORMOptions;

  beforeAll(async () => {
    topology = topologies[driver]();
    orm = await ShardedMikroORM.init(options());
    await orm.schema.refresh();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  beforeEach(async () => {
    await orm.schema.clear();
  });

  async function seedCountries(): Promise<void> {
    const em = orm.em.fork();
    em.create(Country, { code: 'PT', name: 'Portugal' });
    em.create(Country, { code: 'ES', name: 'Spain' });
    await em.flush();
  }

  it('writes a new broadcast row to every shard in one flush, with the sharded rows that reference it', async () => {
    const em = orm.em.fork();
    const pt = em.create(Country, { code: 'PT', name: 'Portugal' });
    const vip = em.create(Label, { id: 1, text: 'vip' });
    // Customers on three shards reference the new country and label: those rows must be there first.
    for (const [id, tier] of [
      [1, 50],
      [2, 150],
      [3, 250],
    ] as const) {
      const customer = em.create(Customer, { id, tier, name: `c${id}`, country: pt });
      customer.labels.add(vip);
    }
    await em.flush();
    expect(await column(orm, 'country', 'code')).toEqual(everywhere(['PT']));
    expect(await column(orm, 'label', 'text')).toEqual(everywhere(['vip']));
    expect(await column(orm, 'customer', 'id')).toEqual({ s0: ['1'], s1: ['2'], s2: ['3'] });
    expect(await column(orm, 'customer_labels', 'label_id')).toEqual(everywhere(['1']));
    // The entity manager keeps one copy, on the shard it wrote first.
    expect(em.shardOf(pt)).toBe('s0');
  });

  it('updates and deletes a broadcast row on every shard', async () => {
    await seedCountries();
    const em = orm.em.fork();
    const pt = await em.findOneOrFail(Country, 'PT');
    pt.name = 'República Portuguesa';
    em.remove(await em.findOneOrFail(Country, 'ES'));
    await em.flush();
    expect(await column(orm, 'country', 'code')).toEqual(everywhere(['PT']));
    expect(await column(orm, 'country', 'name')).toEqual(everywhere(['República Portuguesa']));
  });

  it('reads from one shard: the first one this entity manager used, else the first shard', async () => {
    await seedCountries();
    const fresh = orm.em.fork();
    expect(await log.during(() => fresh.findOneOrFail(Country, 'PT'))).toEqual({ shards: ['s0'], queries: 1 });
    expect(await log.during(() => fresh.find(Country, {}, { orderBy: { code: 'asc' } }))).toEqual({ shards: ['s0'], queries: 1 });
    expect(await log.during(() => fresh.count(Country, { name: { $like: '%a%' } }))).toEqual({ shards: ['s0'], queries: 1 });

    const onS2 = orm.em.fork();
    await onS2.find(Customer, { tier: 250 }); // touches s2 only
    expect(await log.during(() => onS2.find(Country, { code: 'ES' }))).toEqual({ shards: ['s2'], queries: 1 });
    expect(await log.during(() => onS2.findOneOrFail(Country, 'PT'))).toEqual({ shards: ['s2'], queries: 1 });
    expect(onS2.shardOf(await onS2.findOneOrFail(Country, 'PT'))).toBe('s2');
  });

  it('lets rows on any shard reference it, and joins through it stay on their shard', async () => {
    await seedCountries();
    const em = orm.em.fork();
    const pt = await em.findOneOrFail(Country, 'PT'); // a copy from s0
    em.create(Customer, { id: 1, tier: 50, name: 'on s0', country: pt });
    em.create(Customer, { id: 2, tier: 150, name: 'on s1', country: pt }); // no CROSS_SHARD_REFERENCE
    em.create(Customer, { id: 3, tier: 250, name: 'on s2', country: 'ES' });
    await em.flush();

    const reader = orm.em.fork();
    const portuguese = await reader.find(Customer, { country: { name: 'Portugal' } }, { orderBy: { id: 'asc' }, populate: ['country'] });
    expect(portuguese.map(customer => [customer.id, reader.shardOf(customer), customer.country?.name])).toEqual([
      [1, 's0', 'Portugal'],
      [2, 's1', 'Portugal'],
    ]);
    // The country populated on each shard is that shard's copy.
    expect(portuguese.map(customer => reader.shardOf(customer.country!))).toEqual(['s0', 's1']);
    const spanish = await reader.findOneOrFail(Customer, 3, { populate: ['country'] });
    expect([reader.shardOf(spanish.country!), spanish.country!.name]).toEqual(['s2', 'Spain']);
  });

  it('sends nativeUpdate, nativeDelete, insert, insertMany, upsert and upsertMany to every shard', async () => {
    await seedCountries();
    const em = orm.em.fork();
    expect(await em.nativeUpdate(Country, { code: 'PT' }, { currency: 'EUR' })).toBe(1);
    expect(await column(orm, 'country', 'currency')).toEqual(everywhere(['EUR', 'null']));
    await em.insert(Country, { code: 'FR', name: 'France' });
    await em.insertMany(Country, [{ code: 'DE', name: 'Germany' }, em.create(Country, { code: 'IT', name: 'Italy' }, { persist: false })]);
    const upserted = await em.upsert(Country, { code: 'PT', name: 'Portugal', currency: 'PTE' });
    expect(upserted.currency).toBe('PTE');
    await em.upsertMany(Country, [
      { code: 'ES', name: 'España', currency: 'EUR' },
      { code: 'GR', name: 'Greece', currency: 'EUR' },
    ]);
    expect(await column(orm, 'country', 'code')).toEqual(everywhere(['DE', 'ES', 'FR', 'GR', 'IT', 'PT']));
    expect(await column(orm, 'country', 'currency')).toEqual(everywhere(['EUR', 'EUR', 'PTE', 'null', 'null', 'null'].sort()));
    expect(await em.nativeDelete(Country, { currency: null })).toBe(3);
    expect(await column(orm, 'country', 'code')).toEqual(everywhere(['ES', 'GR', 'PT']));
    // { shard } writes that shard's copy only.
    expect(await em.nativeUpdate(Country, { code: 'GR' }, { name: 'Hellas' }, { shard: 's1' })).toBe(1);
    expect((await column(orm, 'country', 'name')).s1).toContain('Hellas');
    expect((await column(orm, 'country', 'name')).s0).not.toContain('Hellas');
  });

  it('writes on no shard when one shard fails: the writes are one transaction', async () => {
    await seedCountries();
    // s2 alone already has France: inserting it everywhere fails there.
    await orm.shard('s2').em.fork().getConnection().execute(`insert into "country" ("code", "name") values ('FR', 'France')`);
    const before = await allRows(orm);
    const error = await orm.em
      .fork()
      .insert(Country, { code: 'FR', name: 'France' })
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(UniqueConstraintViolationException);
    expect(shardFailureOf(error)?.shard).toBe('s2');
    expect(await allRows(orm)).toEqual(before);

    const em = orm.em.fork();
    em.create(Country, { code: 'FR', name: 'France' });
    em.create(Customer, { id: 1, tier: 50, name: 'c1', country: 'PT' });
    await expect(em.flush()).rejects.toBeInstanceOf(UniqueConstraintViolationException);
    expect(await allRows(orm)).toEqual(before);
  });

  it('refuses to change two copies of one row in one flush, writing nothing', async () => {
    await seedCountries();
    const before = await allRows(orm);
    const em = orm.em.fork();
    (await em.findOneOrFail(Country, 'PT')).name = 'one';
    (await em.findOneOrFail(Country, 'PT', { shard: 's1' })).name = 'two';
    const error = await refusal(() => em.flush());
    expect(error.code).toBe('UNSUPPORTED_OPERATION');
    expect(error.message).toContain('Country#PT');
    expect(await allRows(orm)).toEqual(before);
  });

  it('copyBroadcastRows() gives a shard the broadcast rows it lacks', async () => {
    await seedCountries();
    const em = orm.em.fork();
    em.create(Label, { id: 1, text: 'vip' });
    em.create(Label, { id: 2, text: 'new' });
    await em.flush();
    // s2 lost its copies (a shard added, or restored from an old backup).
    const s2 = orm.shard('s2').em.fork().getConnection();
    await s2.execute(`delete from "country" where "code" = 'ES'`);
    await s2.execute(`delete from "label"`);
    expect(await copyBroadcastRows(orm, 's2', { batchSize: 1 })).toEqual({ Country: 1, Label: 2 });
    expect(await column(orm, 'country', 'code')).toEqual(everywhere(['ES', 'PT']));
    expect(await column(orm, 'label', 'text')).toEqual(everywhere(['new', 'vip']));
    expect(await copyBroadcastRows(orm, 's2')).toEqual({ Country: 0, Label: 0 });
    await expect(copyBroadcastRows(orm, 'nope' as never)).rejects.toMatchObject({ code: 'UNKNOWN_SHARD' });
  });

  it('refuses a broadcast write in a single-shard transaction across shards, writing nothing', async () => {
    const before = await allRows(orm);
    const error = await refusal(() =>
      orm.em.fork().transactional(
        async tx => {
          tx.create(Country, { code: 'PT', name: 'Portugal' });
        },
        { mode: 'single' },
      ),
    );
    expect(error.code).toBe('TRANSACTION_SPANS_SHARDS');
    expect(await allRows(orm)).toEqual(before);
  });

  it('refuses broadcast declarations it cannot keep on every shard', async () => {
    if (driver !== 'sqlite') return;
    const GeneratedSchema = defineEntity({ name: 'Generated', properties: { id: p.integer().primary(), name: p.string() } });
    class Generated extends GeneratedSchema.class {}
    GeneratedSchema.setClass(Generated);
    const declarations: [object, RegExp, unknown[]?][] = [
      [{ Country: { broadcast: true, key: 'code' } }, /`\{ broadcast: true \}` alone/],
      [{ Generated: { broadcast: true } }, /generated by the database/, [Generated]],
      [{ Customer: { broadcast: true } }, /Customer\.country relates Customer to Country, which is not broadcast/],
      [{ Customer: { broadcast: true }, Country: { broadcast: true } }, /Customer\.purchases relates Customer to Purchase|many-to-many relation Customer owns/],
      [{ Customer: { parent: 'country' }, Country: { broadcast: true } }, /broadcast to every shard: it cannot place Customer/],
    ];
    for (const [shardBy, message, extra] of declarations) {
      const error = await refusal(() =>
        ShardedMikroORM.init({ ...options(), entities: [...movingEntities, ...(extra ?? [])], shardBy, connect: false } as ShardedMikroORMOptions),
      );
      expect(error.code).toBe('INVALID_OPTIONS');
      expect(error.message).toMatch(message);
    }
  });
});
