/**
 * Where rows cannot move: SQLite shards, a fleet mixing SQLite and PostgreSQL (neither can commit in two phases
 * across shards). A changed shard key is refused with `SHARD_KEY_CHANGED` and `em.move()` with `MOVE_NOT_POSSIBLE`,
 * each naming why, and nothing is written on any shard.
 */
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { range, ShardedMikroORM, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { allRows } from './support/fleet.ts';
import { Country, Customer, Label, movingEntities, Note, Purchase, PurchaseItem } from './support/moving.ts';
import { refusal } from './support/refusal.ts';
import { PG_URL, postgresTopology, sqliteTopology, type Topology } from './support/topology.ts';

const tiers = () => range([{ shard: 's0' }, { shard: 's1', from: 100 }]);

describe.each(['sqlite', 'mixed'] as const)('moves on a %s fleet', kind => {
  let sqlite: Topology;
  let postgres: Topology;
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    sqlite = sqliteTopology();
    postgres = postgresTopology();
    const s1 =
      kind === 'sqlite' ? { driver: SqliteDriver, ...sqlite.database('s1') } : { driver: PostgreSqlDriver, clientUrl: PG_URL, ...postgres.database('s1') };
    orm = await ShardedMikroORM.init({
      entities: movingEntities,
      shards: { s0: { driver: SqliteDriver, ...sqlite.database('s0') }, s1 },
      pool: { min: 0, max: 2 },
      shardBy: {
        Customer: { key: 'tier', strategy: tiers() },
        Purchase: { parent: 'customer' },
        PurchaseItem: { parent: 'purchase' },
        Country: { broadcast: true },
        Label: { broadcast: true },
      },
      shardChooser: ({ entity }) => (entity instanceof Note ? 's0' : undefined),
    } as ShardedMikroORMOptions);
    await orm.schema.refresh();
    const em = orm.em.fork();
    const pt = em.create(Country, { code: 'PT', name: 'Portugal' });
    const ann = em.create(Customer, { id: 1, tier: 50, name: 'Ann', country: pt });
    ann.labels.add(em.create(Label, { id: 1, text: 'vip' }));
    const purchase = em.create(Purchase, { id: 10, total: 1, customer: ann });
    em.create(PurchaseItem, { id: 100, sku: 'pen', purchase });
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await sqlite?.dispose();
    await postgres?.dispose();
  });

  it('refuses a changed shard key, naming why, and writes nothing', async () => {
    const before = await allRows(orm);
    const em = orm.em.fork();
    const ann = await em.findOneOrFail(Customer, 1, { populate: ['purchases.items'] });
    ann.tier = 150;
    const error = await refusal(() => em.flush());
    expect(error.code).toBe('SHARD_KEY_CHANGED');
    expect(error.message).toContain('Customer#1 lives on shard "s0", and its shard key Customer.tier was changed to 150 that maps to shard "s1"');
    expect(error.message).toContain('which needs PostgreSQL on every shard, and shard "s0" is SQLite');
    expect(await allRows(orm)).toEqual(before);
    expect(em.shardOf(ann)).toBe('s0');
  });

  it('refuses em.move(), naming why, and writes nothing', async () => {
    const before = await allRows(orm);
    const em = orm.em.fork();
    const item = await em.findOneOrFail(PurchaseItem, 100);
    const purchase = await em.findOneOrFail(Purchase, 10);
    em.move([purchase, item], 's1');
    const error = await refusal(() => em.flush());
    expect(error.code).toBe('MOVE_NOT_POSSIBLE');
    expect(error.message).toMatch(/Cannot move Purchase#10 from shard "s0" to shard "s1": its shard key Purchase\.customer/);

    const note = orm.em.fork();
    note.create(Note, { id: 1, text: 'n' });
    await note.flush();
    const after = await allRows(orm);
    note.move(await note.findOneOrFail(Note, 1), 's1');
    const refused = await refusal(() => note.flush());
    expect(refused.code).toBe('MOVE_NOT_POSSIBLE');
    expect(refused.message).toContain('shard "s0" is SQLite');
    expect(await allRows(orm)).toEqual(after);
    expect(after.s0!.note).toBe(before.s0!.note! + 1);
  });
});
