/**
 * Bad input to transactions, table-driven as test/bad-input.test.ts: each row gets a typed error (a `ShardingError`
 * code, or the class plain MikroORM throws for the same mistake), and no shard's rows change.
 */
import { MikroORM, ValidationError } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardFailureOf, ShardedMikroORM, type ShardedEntityManager, type ShardId } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';
import { captured, expectRefused, type BadInputRow } from './support/bad-input.ts';
import { allRows } from './support/fleet.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

const pick = (id: unknown): ShardId => (Number(id) % 2 === 0 ? 'a' : 'b');

let topology: Topology;
let orm: ShardedMikroORM;
let plain: MikroORM;

beforeAll(async () => {
  topology = sqliteTopology();
  orm = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards: { a: topology.database('a'), b: topology.database('b') },
    // An author named 'throws' makes the shard chooser throw; one named 'query' the query chooser.
    shardChooser: ({ entity }) => {
      if ((entity as Author).name === 'throws') throw new Error('no shard for you');
      return pick((entity as Author).id);
    },
    idChooser: ({ id }) => [pick(id)],
    queryChooser: ({ where }) => {
      if ((where as { name?: string }).name === 'query') throw new Error('no shards for you');
      return ['a', 'b'];
    },
  });
  await orm.schema.create();
  const em = orm.em.fork();
  em.create(Author, { id: 2, name: 'on a' });
  em.create(Author, { id: 3, name: 'on b' });
  await em.flush();
  plain = await MikroORM.init({ ...topology.shared, ...topology.database('plain'), entities });
});

afterAll(async () => {
  await orm?.close(true);
  await plain?.close(true);
  await topology?.dispose();
});

/** An entity manager whose transactional() callback is over (committed, or rolled back by a throw). */
async function leaked(em: ShardedEntityManager, rollBack: boolean): Promise<ShardedEntityManager> {
  let inside: ShardedEntityManager | undefined;
  await em
    .transactional(async tx => {
      inside = tx;
      tx.create(Author, { id: 10, name: 'written, then rolled back' });
      await tx.flush();
      if (rollBack) throw new Error('roll back');
      await tx.nativeDelete(Author, { id: 10 });
    })
    .catch(() => undefined);
  return inside!;
}

/** Runs `work` in a transaction begun with begin(), and rolls it back whatever happens. */
const begun = (work: (em: ShardedEntityManager) => Promise<unknown>) => async (em: ShardedEntityManager) => {
  await em.begin();
  try {
    await work(em);
  } finally {
    if (em.isInTransaction()) await em.rollback();
  }
};

const rows: BadInputRow[] = [
  {
    name: 'commit() twice',
    run: async em => {
      await em.begin();
      await em.commit();
      await em.commit();
    },
    error: ValidationError,
    message: /^An open transaction is required for this operation$/,
  },
  {
    name: 'rollback() without a transaction',
    run: em => em.rollback(),
    error: ValidationError,
    message: /^An open transaction is required for this operation$/,
  },
  {
    name: 'begin() twice',
    run: begun(em => em.begin()),
    error: 'INVALID_OPTIONS',
    message: /in a transaction already; commit or roll it back first, or use transactional\(\) to nest one/,
  },
  {
    name: 'a read through the entity manager of a rolled-back transaction',
    run: async em => (await leaked(em, true)).find(Author, {}),
    error: 'TRANSACTION_CLOSED',
    message: /^This entity manager's transaction is rolled back: it cannot read or write any more\./,
  },
  {
    name: 'a flush through the entity manager of a committed transaction',
    run: async em => {
      const over = await leaked(em, false);
      over.create(Author, { id: 12, name: 'too late' });
      await over.flush();
    },
    error: 'TRANSACTION_CLOSED',
    message: /transaction is committed: it cannot read or write any more/,
  },
  {
    name: 'a shard chooser throwing inside transactional(), after another shard was written',
    run: em =>
      em.transactional(async tx => {
        tx.create(Author, { id: 14, name: 'on a' });
        await tx.flush();
        tx.create(Author, { id: 15, name: 'throws' });
        await tx.flush();
      }),
    error: 'CHOOSER_FAILED',
    message: /^shardChooser threw for Author#15: no shard for you\. Nothing was written or read\.$/,
  },
  {
    name: 'a shard chooser throwing in a transaction begun with begin()',
    run: begun(async em => {
      em.create(Author, { id: 16, name: 'on a' });
      await em.flush();
      em.create(Author, { id: 17, name: 'throws' });
      await em.flush();
    }),
    error: 'CHOOSER_FAILED',
    message: /^shardChooser threw for Author#17: no shard for you/,
  },
  {
    name: 'a query chooser throwing inside transactional()',
    run: em =>
      em.transactional(async tx => {
        tx.create(Author, { id: 18, name: 'on a' });
        await tx.find(Author, { name: 'query' });
      }),
    error: 'CHOOSER_FAILED',
    message: /^queryChooser threw for Author/,
  },
  {
    name: "a 'single' transaction touching a second shard",
    run: em =>
      em.transactional(
        async tx => {
          tx.create(Author, { id: 20, name: 'on a' });
          await tx.flush();
          await tx.findOne(Author, 3);
        },
        { mode: 'single' },
      ),
    error: 'TRANSACTION_SPANS_SHARDS',
    message: /^A 'single' transaction is on shard "a" and was asked to touch shard "b" too\./,
  },
  {
    name: "mode 'twopc' on SQLite shards",
    run: em => em.transactional(tx => void tx.create(Author, { id: 22, name: 'on a' }), { mode: 'twopc' }),
    error: 'TWO_PHASE_UNAVAILABLE',
    message: /^Two-phase commit is not available: shard "a" is SQLite; 'twopc' needs PostgreSQL \(PREPARE TRANSACTION\) on every shard\./,
  },
  {
    name: 'an unknown mode',
    run: em => em.transactional(tx => void tx.create(Author, { id: 24, name: 'on a' }), { mode: 'eventual' as 'multi' }),
    error: 'INVALID_OPTIONS',
    message: /the transaction `mode` must be 'single', 'multi' or 'twopc'; got "eventual"/,
  },
  {
    name: "a nested transaction asking for another mode than its outer one's",
    run: em =>
      em.transactional(async tx => {
        tx.create(Author, { id: 26, name: 'on a' });
        await tx.transactional(() => undefined, { mode: 'single' });
      }),
    error: 'INVALID_OPTIONS',
    message: /a nested transaction runs in its outer transaction's mode \('multi'\), not 'single'/,
  },
];

describe('bad input to transactions: a typed error, and nothing written on any shard', () => {
  it.each(rows)('$name', row => expectRefused(orm, row));

  it('commit() twice throws the very error plain MikroORM throws', async () => {
    const em = plain.em.fork();
    await em.begin();
    await em.commit();
    const expected = await captured(() => em.commit());
    const thrown = await captured(async () => {
      const sharded = orm.em.fork();
      await sharded.begin();
      await sharded.commit();
      await sharded.commit();
    });
    expect(thrown).toBeInstanceOf((expected as Error).constructor);
    expect((thrown as Error).message).toBe((expected as Error).message);
  });

  it('the fleet closed under an open transaction: the commit fails naming the shard, and every shard rolled back', async () => {
    const own = sqliteTopology();
    const fleet = await ShardedMikroORM.init({
      ...own.shared,
      entities,
      shards: { a: own.database('a'), b: own.database('b') },
      shardChooser: ({ entity }) => pick((entity as Author).id),
    });
    try {
      await fleet.schema.create();
      const before = await allRows(fleet);
      const thrown = await captured(() =>
        fleet.em.fork().transactional(async tx => {
          tx.create(Author, { id: 30, name: 'on a' });
          tx.create(Author, { id: 31, name: 'on b' });
          await tx.flush();
          await fleet.close();
        }),
      );
      const failure = shardFailureOf(thrown);
      expect(failure).toMatchObject({ operation: 'transaction', done: [] });
      expect((thrown as Error).message).toMatch(new RegExp(`\\(shard ${failure!.shard}\\)$`));
      // MikroORM connects again on first use; closing a SQLite connection rolled its transaction back.
      expect(await allRows(fleet)).toEqual(before);
    } finally {
      await fleet.close(true);
      await own.dispose();
    }
  });
});
