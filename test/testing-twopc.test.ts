/**
 * `rollbackScope()` on a fleet with two-phase commit: the code under test runs as it would outside the scope. A
 * nested `transactional(cb, { mode: 'twopc' })` and a move (a changed shard key, `em.move()`) work inside the scope,
 * and everything is rolled back on every shard at the end: rows counted with raw SQL, no prepared transaction left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { range, ShardedMikroORM, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { rollbackScope } from 'mikro-orm-sharding/testing';
import { allRows } from './support/fleet.ts';
import { Customer, movingEntities, Note, Purchase } from './support/moving.ts';
import { preparedCount } from './support/prepared.ts';
import { postgresTopology, type Topology } from './support/topology.ts';

/** Unique per run: prepared transaction ids are server-wide. */
const coordinatorId = `scope_${process.pid}_${Date.now().toString(36)}`;

let topology: Topology;
let orm: ShardedMikroORM;

beforeAll(async () => {
  topology = postgresTopology();
  orm = await ShardedMikroORM.init({
    ...topology.shared,
    entities: movingEntities,
    shards: topology.shards(2),
    shardBy: {
      Customer: { key: 'tier', strategy: range([{ shard: 's0' }, { shard: 's1', from: 100 }]) },
      Purchase: { parent: 'customer' },
    },
    shardChooser: ({ entity }) => (entity instanceof Note ? 's0' : undefined), // the declared entities route by their key
    twoPhaseCommit: { coordinatorId, logShard: 's0' },
  } as ShardedMikroORMOptions);
  await orm.schema.refresh();
  const em = orm.em.fork();
  const ann = em.create(Customer, { id: 1, tier: 50, name: 'Ann' });
  em.create(Purchase, { id: 10, total: 100, customer: ann });
  await em.flush();
});

afterAll(async () => {
  await orm?.close(true);
  await topology?.dispose();
});

/** Customers and purchases per shard, by raw SQL. */
async function rows(): Promise<Record<string, [number | undefined, number | undefined]>> {
  const all = await allRows(orm);
  return Object.fromEntries(Object.entries(all).map(([shard, counts]) => [shard, [counts.customer, counts.purchase]]));
}

const prepared = () => preparedCount(orm, coordinatorId);

const committed = { s0: [1, 1], s1: [0, 0] };

describe('rollbackScope() with two-phase commit', () => {
  it('runs a nested { mode: "twopc" } transaction, and rolls it back with the scope', async () => {
    {
      await using scope = await rollbackScope(orm);
      const total = await scope.em.transactional(
        async tx => {
          tx.create(Customer, { id: 2, tier: 150, name: 'Bob' });
          tx.create(Customer, { id: 3, tier: 60, name: 'Cid' });
          await tx.flush();
          return tx.count(Customer);
        },
        { mode: 'twopc' },
      );
      expect(total).toBe(3);
      expect(await scope.em.count(Customer)).toBe(3);
    }
    expect(await rows()).toEqual(committed);
    expect(await prepared()).toBe(0);
  });

  it('moves rows when a shard key changes, inside a nested twopc transaction or in the scope itself, and rolls the move back', async () => {
    {
      await using scope = await rollbackScope(orm);
      await scope.em.transactional(
        async tx => {
          const ann = await tx.findOneOrFail(Customer, { tier: 50 });
          ann.tier = 150; // maps to s1: the customer and its purchase move
        },
        { mode: 'twopc' },
      );
      const ann = await scope.em.findOneOrFail(Customer, 1);
      expect(scope.em.shardOf(ann)).toBe('s1');
      expect(await scope.em.count(Purchase, {}, { shard: 's1' })).toBe(1);

      ann.tier = 40; // back to s0, in the scope's own flush: as outside any transaction
      await scope.em.flush();
      expect(scope.em.shardOf(ann)).toBe('s0');
      expect(await scope.em.count(Purchase, {}, { shard: 's0' })).toBe(1);
      expect(await scope.em.count(Customer, {}, { shard: 's1' })).toBe(0);
    }
    expect(await rows()).toEqual(committed);
    expect(await prepared()).toBe(0);
    expect((await orm.em.fork().findOneOrFail(Customer, 1)).tier).toBe(50);
  });

  it('keeps the nesting rule inside a nested transaction: one nested in it runs in its mode', async () => {
    await using scope = await rollbackScope(orm);
    const refused = await scope.em
      .transactional(async tx => tx.transactional(async () => 1, { mode: 'multi' }), { mode: 'twopc' })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'INVALID_OPTIONS' });
  });

  it('still refuses a second shard in a nested { mode: "single" } transaction, as outside the scope', async () => {
    {
      await using scope = await rollbackScope(orm);
      const refused = await scope.em
        .transactional(
          async tx => {
            tx.create(Customer, { id: 4, tier: 10, name: 'Dee' });
            tx.create(Customer, { id: 5, tier: 110, name: 'Eve' });
          },
          { mode: 'single' },
        )
        .catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'TRANSACTION_SPANS_SHARDS' });
    }
    expect(await rows()).toEqual(committed);
  });
});
