/**
 * Moving rows between PostgreSQL shards: a changed shard key, `em.move()`, the rows that follow through `{ parent }`
 * (loaded or not) and join-table rows, all in one two-phase commit; references a move would split, refused before
 * anything is written; a failure in the middle leaving every row where it was. Rows are counted with raw SQL on
 * every shard.
 */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hash, idGenerator, range, shardFailureOf, ShardedMikroORM, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { Ticket } from './support/keyed.ts';
import { Country, Customer, Label, movingEntities, Note, Purchase, PurchaseItem, Receipt, ReceiptLine, receiptEntities } from './support/moving.ts';
import { preparedCount } from './support/prepared.ts';
import { refusal } from './support/refusal.ts';
import { adminQuery, postgresTopology, type Topology } from './support/topology.ts';

/** Unique per run: prepared transaction ids are server-wide. */
const coordinatorId = `moves_${process.pid}_${Date.now().toString(36)}`;
const tiers = range([{ shard: 's0' }, { shard: 's1', from: 100 }, { shard: 's2', from: 200 }]);
const byTenant = hash({ shards: ['s0', 's1', 's2'] });
const ids = idGenerator({ node: 1 });

let topology: Topology;
let orm: ShardedMikroORM;
const lines: string[] = [];

beforeAll(async () => {
  topology = postgresTopology();
  orm = await ShardedMikroORM.init({
    ...topology.shared,
    entities: [...movingEntities, Ticket],
    shards: topology.shards(3),
    pool: { min: 0, max: 3 },
    shardBy: {
      Customer: { key: 'tier', strategy: tiers },
      Purchase: { parent: 'customer' },
      PurchaseItem: { parent: 'purchase' },
      Country: { broadcast: true },
      Label: { broadcast: true },
      Ticket: { key: 'tenantId', strategy: byTenant, ids },
    },
    shardChooser: ({ entity, em }) => (entity instanceof Note ? (entity.customer ? em.shardOf(entity.customer) : 's0') : undefined),
    twoPhaseCommit: { coordinatorId, logShard: 's0' },
    debug: ['query'],
    logger: line => lines.push(line),
    colors: false,
  } as ShardedMikroORMOptions);
  await orm.schema.refresh();
});

afterAll(async () => {
  await orm?.close(true);
  await topology?.dispose();
});

beforeEach(async () => {
  await orm.schema.clear();
  const em = orm.em.fork();
  const pt = em.create(Country, { code: 'PT', name: 'Portugal' });
  const vip = em.create(Label, { id: 1, text: 'vip' });
  const ann = em.create(Customer, { id: 1, tier: 50, name: 'Ann', country: pt });
  ann.labels.add(vip);
  const first = em.create(Purchase, { id: 10, total: 100, customer: ann, meta: { tags: ['gift', 'express'] } });
  em.create(PurchaseItem, { id: 100, sku: 'pen', purchase: first });
  em.create(PurchaseItem, { id: 101, sku: 'ink', purchase: first });
  const second = em.create(Purchase, { id: 11, total: 20, customer: ann });
  em.create(PurchaseItem, { id: 110, sku: 'pad', purchase: second });
  em.create(Customer, { id: 2, tier: 60, name: 'Bob' });
  em.create(Customer, { id: 3, tier: 150, name: 'Cid' });
  await em.flush();
  lines.length = 0;
});

const statements = (pattern: RegExp) => lines.map(line => line.replace(/^\[query\] /, '').replace(/ \[took .*$/, '')).filter(line => pattern.test(line));

/** Rows of some tables per shard, by raw SQL: `{ s0: { customer: 2, ... }, ... }`. */
async function rows(...tables: string[]): Promise<Record<string, Record<string, number | undefined>>> {
  const all = await allRows(orm);
  return Object.fromEntries(Object.entries(all).map(([shard, counts]) => [shard, Object.fromEntries(tables.map(table => [table, counts[table]]))]));
}

/** What the shards hold for a prepared transaction of this run: none once a move is over. */
const prepared = () => preparedCount(orm, coordinatorId);

describe('a changed shard key', () => {
  it('moves the row, the rows that follow it (loaded or not) and its join-table rows, in one two-phase commit', async () => {
    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, { tier: 50 });
    const first = await em.findOneOrFail(Purchase, 10); // loaded; purchase 11 and the items are not
    ann.tier = 250; // maps to s2
    ann.name = 'Ann (moved)';
    await em.flush();

    expect(await rows('customer', 'purchase', 'purchase_item', 'customer_labels', 'country', 'label')).toEqual({
      s0: { customer: 1, purchase: 0, purchase_item: 0, customer_labels: 0, country: 1, label: 1 },
      s1: { customer: 1, purchase: 0, purchase_item: 0, customer_labels: 0, country: 1, label: 1 },
      s2: { customer: 1, purchase: 2, purchase_item: 3, customer_labels: 1, country: 1, label: 1 },
    });
    // Prepared on both shards, committed on both.
    expect(
      statements(/^\(shard s\d\) prepare transaction/)
        .map(line => line.slice(0, 10))
        .sort(),
    ).toEqual(['(shard s0)', '(shard s2)']);
    expect(await prepared()).toBe(0);
    // The entity manager holds them on s2 now; s0's fork forgot them.
    expect([em.shardOf(ann), em.shardOf(first)]).toEqual(['s2', 's2']);
    expect(em.on('s0').getUnitOfWork().getById(Customer, 1)).toBeUndefined();
    expect(em.on('s2').getUnitOfWork().getById(Customer, 1)).toBe(ann);
    // The pending change was written there as an update: the version went up once.
    expect(ann.version).toBe(2);

    const fresh = orm.em.fork();
    const moved = await fresh.findOneOrFail(Customer, 1, { populate: ['purchases.items', 'labels', 'country'] });
    expect(fresh.shardOf(moved)).toBe('s2');
    expect([moved.name, moved.tier, moved.version, moved.country?.name, moved.labels.getItems().map(label => label.text)]).toEqual([
      'Ann (moved)',
      250,
      2,
      'Portugal',
      ['vip'],
    ]);
    expect(
      moved.purchases
        .getItems()
        .map(purchase => [
          purchase.id,
          purchase.meta,
          purchase.items
            .getItems()
            .map(item => item.sku)
            .sort(),
        ])
        .sort(),
    ).toEqual([
      [10, { tags: ['gift', 'express'] }, ['ink', 'pen']],
      [11, null, ['pad']],
    ]);
    expect(await fresh.count(Customer, { tier: { $gte: 200 } })).toBe(1);

    // Later changes go to the new shard.
    ann.name = 'Ann again';
    await em.flush();
    expect((await orm.shard('s2').em.fork().getConnection().execute('select name from customer where id = 1'))[0].name).toBe('Ann again');
  });

  it('moves a row whose parent changed to one on another shard, with the rows that follow it', async () => {
    const em = orm.em.fork();
    const second = await em.findOneOrFail(Purchase, 11);
    second.customer = await em.findOneOrFail(Customer, 3); // Cid, on s1
    await em.flush();
    expect(await rows('purchase', 'purchase_item')).toEqual({
      s0: { purchase: 1, purchase_item: 2 },
      s1: { purchase: 1, purchase_item: 1 },
      s2: { purchase: 0, purchase_item: 0 },
    });
    expect(em.shardOf(second)).toBe('s1');
    const fresh = orm.em.fork();
    expect((await fresh.find(PurchaseItem, { purchase: { customer: 3 } })).map(item => item.sku)).toEqual(['pad']);
  });

  it('writes a new row that follows a moving one on the new shard', async () => {
    const em = orm.em.fork();
    const bob = await em.findOneOrFail(Customer, 2);
    bob.tier = 120; // s1
    const purchase = em.create(Purchase, { id: 20, total: 7, customer: bob });
    em.create(PurchaseItem, { id: 200, sku: 'cup', purchase });
    await em.flush();
    expect(await rows('customer', 'purchase', 'purchase_item')).toEqual({
      s0: { customer: 1, purchase: 2, purchase_item: 3 },
      s1: { customer: 2, purchase: 1, purchase_item: 1 },
      s2: { customer: 0, purchase: 0, purchase_item: 0 },
    });
    expect([em.shardOf(bob), em.shardOf(purchase)]).toEqual(['s1', 's1']);
  });

  it('deletes a follower the same flush removes, instead of moving it', async () => {
    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, 1);
    const item = await em.findOneOrFail(PurchaseItem, 101); // and a reference to purchase 10, never loaded
    em.remove(item);
    ann.tier = 250;
    await em.flush();
    // The reference moved with its row: it loads from s2.
    expect(em.shardOf(item.purchase)).toBe('s2');
    expect((await em.populate(item.purchase, ['items'])).items.getItems().map(left => left.sku)).toEqual(['pen']);
    expect(await rows('purchase', 'purchase_item')).toEqual({
      s0: { purchase: 0, purchase_item: 0 },
      s1: { purchase: 0, purchase_item: 0 },
      s2: { purchase: 2, purchase_item: 2 },
    });
  });

  it('moves in a twopc transaction, and the entity manager of the transaction hands the moved entities on', async () => {
    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, 1);
    await em.transactional(
      async tx => {
        (await tx.findOneOrFail(Customer, 1)).tier = 150;
      },
      { mode: 'twopc' },
    );
    expect((await rows('customer')).s1).toEqual({ customer: 2 });
    expect(em.shardOf(ann)).toBe('s1');
    expect(em.on('s0').getUnitOfWork().getById(Customer, 1)).toBeUndefined();
    expect(em.on('s1').getUnitOfWork().getById(Customer, 1)).toBe(ann);
  });
});

describe('broadcast entities in a two-phase commit', () => {
  it('prepare on every shard, so that every shard has the row or none has', async () => {
    await orm.em.fork().transactional(
      async tx => {
        tx.create(Country, { code: 'ES', name: 'Spain' });
        await tx.flush();
        await tx.nativeUpdate(Country, { code: 'PT' }, { currency: 'EUR' });
      },
      { mode: 'twopc' },
    );
    expect(
      statements(/^\(shard s\d\) prepare transaction/)
        .map(line => line.slice(0, 10))
        .sort(),
    ).toEqual(['(shard s0)', '(shard s1)', '(shard s2)']);
    expect(await prepared()).toBe(0);
    for (const shard of orm.shardIds) {
      const found: { code: string; currency: string | null }[] = await orm
        .shard(shard)
        .em.fork()
        .getConnection()
        .execute('select code, currency from country order by code');
      expect(found).toEqual([
        { code: 'ES', currency: null },
        { code: 'PT', currency: 'EUR' },
      ]);
    }
  });
});

describe('em.move()', () => {
  it('moves rows routed by hand (hot to archive) with the rows it is given; a row that others reference is refused alone', async () => {
    const hotTopology = postgresTopology();
    // Made beforehand: `frozen` connects to the archive's database while the fleet starts.
    await adminQuery([`create database "${hotTopology.database('archive').dbName}"`]);
    const archive = await ShardedMikroORM.init({
      ...hotTopology.shared,
      entities: receiptEntities,
      // `frozen` reads the archive's database, and may not be written.
      shards: {
        hot: hotTopology.database('hot'),
        archive: hotTopology.database('archive'),
        frozen: { ...hotTopology.database('archive'), readOnly: true, ensureDatabase: false },
      },
      pool: { min: 0, max: 2 },
      shardChooser: () => 'hot',
      idChooser: () => ['hot', 'archive'],
      twoPhaseCommit: { coordinatorId: `${coordinatorId}_hot`, logShard: 'hot' },
    });
    try {
      await archive.schema.refresh();
      const em = archive.em.fork();
      for (const id of [1, 2]) {
        const receipt = em.create(Receipt, { id, total: id * 10, issuedOn: `2019-0${id}-01` });
        em.create(ReceiptLine, { id: id * 10, text: 'a', receipt });
        em.create(ReceiptLine, { id: id * 10 + 1, text: 'b', receipt });
      }
      await em.flush();
      const counts = async () => {
        const all = await allRows(archive);
        return { hot: [all.hot!.receipt, all.hot!.receipt_line], archive: [all.archive!.receipt, all.archive!.receipt_line] };
      };

      const alone = archive.em.fork();
      alone.move(await alone.findOneOrFail(Receipt, 1), 'archive');
      const error = await refusal(() => alone.flush());
      expect(error.code).toBe('CROSS_SHARD_REFERENCE');
      expect(error.message).toMatch(/Receipt#1 moves from shard "hot" to shard "archive", but ReceiptLine#1\d references it through "receipt"/);
      expect(await counts()).toEqual({ hot: [2, 4], archive: [0, 0] });
      expect(alone.shardOf(await alone.findOneOrFail(Receipt, 1))).toBe('hot');

      // A line moved without its receipt: the line holds the foreign key, so the refusal names it and its owning side.
      const line = archive.em.fork();
      const [first] = (await line.findOneOrFail(Receipt, 1, { populate: ['lines'] })).lines.getItems();
      line.move(first!, 'archive');
      const lineError = await refusal(() => line.flush());
      expect(lineError.code).toBe('CROSS_SHARD_REFERENCE');
      expect(lineError.message).toMatch(/^ReceiptLine#1\d on shard "archive" references Receipt#1 on shard "hot" through "receipt"/);
      expect(await counts()).toEqual({ hot: [2, 4], archive: [0, 0] });

      const mover = archive.em.fork();
      const old = await mover.findOneOrFail(Receipt, 1, { populate: ['lines'] });
      mover.move([old, ...old.lines], 'archive');
      expect(mover.shardOf(old)).toBe('hot'); // until the flush
      await mover.flush();
      expect(await counts()).toEqual({ hot: [1, 2], archive: [1, 2] });
      expect(mover.shardOf(old)).toBe('archive');
      const reader = archive.em.fork();
      const found = await reader.findOneOrFail(Receipt, 1, { populate: ['lines'] });
      expect([reader.shardOf(found), found.lines.length]).toEqual(['archive', 2]);

      const frozen = archive.em.fork();
      frozen.move(await frozen.findOneOrFail(Receipt, 2), 'frozen');
      expect((await refusal(() => frozen.flush())).code).toBe('READ_ONLY_SHARD');
      expect(await counts()).toEqual({ hot: [1, 2], archive: [1, 2] });

      // Back again, the other way round.
      mover.move([old, ...old.lines], 'hot');
      await mover.flush();
      expect(await counts()).toEqual({ hot: [2, 4], archive: [0, 0] });
    } finally {
      await archive.close(true);
      await hotTopology.dispose();
    }
  });

  it('refuses what it cannot move, before anything is written', async () => {
    const before = await allRows(orm);
    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, 1);
    em.move(ann, 's1'); // its tier maps to s0
    const mismatch = await refusal(() => em.flush());
    expect(mismatch.code).toBe('MOVE_NOT_POSSIBLE');
    expect(mismatch.message).toContain('its shard key Customer.tier 50 maps to shard "s0"');

    const other = orm.em.fork();
    other.move(await other.findOneOrFail(Country, 'PT'), 's1');
    expect((await refusal(() => other.flush())).message).toContain('Country is broadcast');
    expect(() => orm.em.fork().move(orm.em.fork().create(Customer, { id: 9, tier: 1, name: 'new' }), 's1')).toThrow(
      expect.objectContaining({ code: 'UNPLACED_ENTITY' }),
    );
    expect(() => orm.em.fork().move(ann, 'nope' as never)).toThrow(expect.objectContaining({ code: 'UNKNOWN_SHARD' }));
    const elsewhere = orm.em.fork();
    elsewhere.move(ann, 's1'); // loaded by another entity manager
    expect((await refusal(() => elsewhere.flush())).message).toContain('does not manage it');
    expect(await allRows(orm)).toEqual(before);
  });
});

describe('refusals and failures', () => {
  it('refuses a move that would leave a reference behind, then moves once the reference is gone', async () => {
    const em = orm.em.fork();
    em.create(Note, { id: 1, text: 'call back', customer: 1 }, { shard: 's0' });
    await em.flush();
    const before = await allRows(orm);

    const mover = orm.em.fork();
    const ann = await mover.findOneOrFail(Customer, 1);
    ann.tier = 150;
    const error = await refusal(() => mover.flush());
    expect(error.code).toBe('CROSS_SHARD_REFERENCE');
    expect(error.message).toContain('Customer#1 moves from shard "s0" to shard "s1", but Note#1 references it through "customer"');
    expect(await allRows(orm)).toEqual(before);
    expect(mover.shardOf(ann)).toBe('s0');

    // The note lets go of it in the same flush: its update is written before the old row goes.
    (await mover.findOneOrFail(Note, 1)).customer = null;
    await mover.flush();
    expect((await rows('customer', 'note')).s1).toEqual({ customer: 2, note: 0 });
  });

  it('refuses a many-to-many link to a row that stays, and moves both rows together', async () => {
    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, 1);
    ann.friends.add(await em.findOneOrFail(Customer, 2));
    await em.flush();
    const before = await allRows(orm);
    ann.tier = 150;
    const error = await refusal(() => em.flush());
    expect(error.message).toContain('it references Customer#2 through "friends"');
    expect(await allRows(orm)).toEqual(before);

    (await em.findOneOrFail(Customer, 2)).tier = 160;
    await em.flush();
    expect(await rows('customer', 'customer_friends')).toEqual({
      s0: { customer: 0, customer_friends: 0 },
      s1: { customer: 3, customer_friends: 1 },
      s2: { customer: 0, customer_friends: 0 },
    });
  });

  it('leaves every row where it was when the move fails on the new shard or on the old one, and can be retried', async () => {
    const before = await allRows(orm);
    // s2 already has a purchase 10: copying Ann's there fails.
    const s2 = orm.shard('s2').em.fork().getConnection();
    await s2.execute(`insert into customer (id, tier, name, version) values (99, 299, 'squatter', 1)`);
    await s2.execute(`insert into purchase (id, total, customer_id) values (10, 1, 99)`);
    const blocked = await allRows(orm);

    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, 1);
    ann.tier = 250;
    const error = await em.flush().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(UniqueConstraintViolationException);
    expect(shardFailureOf(error)?.shard).toBe('s2');
    expect(await allRows(orm)).toEqual(blocked);
    expect(await prepared()).toBe(0);
    expect(em.shardOf(ann)).toBe('s0');
    expect(em.on('s0').getUnitOfWork().getById(Customer, 1)).toBe(ann);

    // Now the old shard refuses to delete: the copies on s2 roll back with it.
    await s2.execute('delete from purchase where id = 10');
    await s2.execute('delete from customer where id = 99');
    const s0 = orm.shard('s0').em.fork().getConnection();
    await s0.execute(`create function refuse_delete() returns trigger as $$ begin raise exception 'not today'; end $$ language plpgsql`);
    await s0.execute('create trigger refuse_delete before delete on purchase_item for each row execute function refuse_delete()');
    await expect(em.flush()).rejects.toThrow(/not today/);
    expect(await allRows(orm)).toEqual(before);
    expect(em.shardOf(ann)).toBe('s0');

    await s0.execute('drop trigger refuse_delete on purchase_item');
    await s0.execute('drop function refuse_delete');
    await em.flush();
    expect((await rows('customer', 'purchase', 'purchase_item')).s2).toEqual({ customer: 1, purchase: 2, purchase_item: 3 });
    expect(em.shardOf(ann)).toBe('s2');
  });

  it("refuses a move in a transaction of mode 'multi', and a move of rows whose ids carry their bucket", async () => {
    const em = orm.em.fork();
    const ticket = em.create(Ticket, { id: ids.next(byTenant.bucketOf('acme')), tenantId: 'acme', subject: 'help' });
    await em.flush();
    const before = await allRows(orm);

    const multi = await refusal(() =>
      orm.em.fork().transactional(async tx => {
        (await tx.findOneOrFail(Customer, 1)).tier = 150;
      }),
    );
    expect(multi.code).toBe('SHARD_KEY_CHANGED');
    expect(multi.message).toContain("transaction is in mode 'multi'");

    const other = ['globex', 'initech', 'umbrella', 'hooli'].find(tenant => byTenant.shardFor(tenant, { orm, entityName: 'Ticket' }) !== em.shardOf(ticket))!;
    ticket.tenantId = other;
    const bucket = await refusal(() => em.flush());
    expect(bucket.code).toBe('SHARD_KEY_CHANGED');
    expect(bucket.message).toContain("Ticket's ids carry their bucket");
    expect(await allRows(orm)).toEqual(before);
  });
});
