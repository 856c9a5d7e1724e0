/**
 * Seed 004's test fixture, `sql_session_fixture('warehouse', ...)`, for the whole fleet: fresh databases for the test
 * file (`createTestShards`), and in each test an entity manager whose work is rolled back on every database at the
 * end (`rollbackScope`), whether the test passes or fails. One fixture covers the default database and the
 * warehouse: there is no extra fixture per connection to write.
 *
 * Run: pnpm exec vitest run docs/examples/warehouse   (PostgreSQL at PG_URL, default postgresql://postgres@127.0.0.1:5432)
 */
import { ShardedMikroORM, type ShardedEntityManager } from 'mikro-orm-sharding';
import { createTestShards, rollbackScope, type TestShards } from 'mikro-orm-sharding/testing';
import { afterAll, beforeAll, test as base, expect } from 'vitest';
import { PG_URL } from '../support/postgres.ts';
import { latestTransaction, purchase, routing, Transaction, User } from './app.ts';

let shards: TestShards;
let orm: ShardedMikroORM;

beforeAll(async () => {
  // The databases this file tests on: PostgreSQL, as in production, since purchases use two-phase commit.
  shards = await createTestShards({ driver: 'postgresql', ids: ['default', 'warehouse'], clientUrl: PG_URL, prefix: 'example_warehouse' });
  orm = await ShardedMikroORM.init({ ...routing, ...shards.options, pool: { min: 0, max: 2 } });
  await orm.schema.create();
  // Committed before the tests: what every test starts from.
  const em = orm.em.fork();
  em.create(User, { id: 1, name: 'ann', balance: 100 });
  await em.flush();
});

afterAll(async () => {
  await orm?.close(true);
  await shards?.dispose();
});

// The fixture: each test gets `em`, in a transaction on every database it touches, rolled back after the test.
const test = base.extend<{ em: ShardedEntityManager }>({
  // oxlint-disable-next-line no-empty-pattern -- vitest reads the fixtures a fixture needs from this pattern
  em: async ({}, use) => {
    await using scope = await rollbackScope(orm);
    await use(scope.em);
  },
});

test('a purchase charges the user and records it in the warehouse', async ({ em }) => {
  // purchase() runs its own two-phase transaction; inside the test's transaction it nests, and is rolled back too.
  await purchase(em, 1, 30, new Date('2025-03-01T10:00:00Z'));
  expect((await em.findOneOrFail(User, 1)).balance).toBe(70);
  expect(await latestTransaction(em)).toMatchObject({ userId: 1, amount: 30 });
});

test('a purchase the user cannot pay writes nothing', async ({ em }) => {
  await expect(purchase(em, 1, 500)).rejects.toThrow('ann cannot pay 500');
  expect((await em.findOneOrFail(User, 1)).balance).toBe(100);
  expect(await em.count(Transaction)).toBe(0);
});

test('each test starts from what was committed before the tests', async ({ em }) => {
  expect((await em.findOneOrFail(User, 1)).balance).toBe(100);
  expect(await latestTransaction(em)).toBeUndefined();
});
