import { IsolationLevel, MikroORM, TransactionPropagation, TransactionStateError, ValidationError } from '@mikro-orm/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { shardFailureOf, ShardedMikroORM, ShardingError, type ShardedEntityManager } from 'mikro-orm-sharding';
import { committedRows } from './support/committed.ts';
import { Author, Book, entities } from './support/entities.ts';
import { openFleet } from './support/fleet.ts';
import type { Topology } from './support/topology.ts';

/**
 * The sharded entity manager's transactions against MikroORM's own on one database: the same surface
 * (`transactional`, `begin`/`commit`/`rollback`, propagation, nesting), each shard's transaction begun lazily and
 * committed the mode's way. What is committed is counted from another session (see `committedRows`).
 */
export function describeTransactions(makeTopology: () => Topology): void {
  let topology: Topology;
  let orm: ShardedMikroORM;
  let plain: MikroORM;
  const lines: string[] = [];
  const logging = { debug: ['query' as const], logger: (line: string) => lines.push(line), colors: false };

  /** The logged statements of a shard since the last reset, without timings. */
  const statements = (shard: string) =>
    lines
      .filter(line => line.includes(`(shard ${shard}) `))
      .map(line => line.replace(/^.*\(shard \w+\) /, '').replace(/ \[took .*$/, ''))
      .map(sql => (/savepoint/.test(sql) ? sql.replace(/[`"]/g, '') : sql));
  const transactionStatements = (shard: string) => statements(shard).filter(sql => /^(begin|start transaction|commit|rollback|savepoint|release)/.test(sql));

  beforeAll(async () => {
    topology = makeTopology();
    orm = await openFleet(topology, logging);
    plain = await MikroORM.init({ ...topology.shared, ...topology.database('plain'), entities, ...logging });
    await plain.schema.refresh();
    const em = orm.em.fork();
    for (const id of [1, 2, 3]) {
      em.create(Author, { id, name: `author-${id}` }); // s1, s2, s0
    }
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await plain?.close(true);
    await topology?.dispose();
  });

  beforeEach(() => {
    lines.length = 0;
  });

  const authors = () => committedRows(orm, 'author');
  const plus = (counts: Record<string, number>, added: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).map(([shard, n]) => [shard, n + (added[shard] ?? 0)]));

  describe('transactional()', () => {
    it("returns the callback's result, commits on every shard it touched, and hands its entities back", async () => {
      const before = await authors();
      const em = orm.em.fork();
      let created: Author | undefined;
      const result = await em.transactional(async tx => {
        expect(tx).not.toBe(em);
        expect(tx.isInTransaction()).toBe(true);
        created = tx.create(Author, { id: 101, name: 'on s2' });
        tx.create(Author, { id: 102, name: 'on s0' });
        return 42;
      });
      expect(result).toBe(42);
      expect(em.isInTransaction()).toBe(false);
      expect(await authors()).toEqual(plus(before, { s0: 1, s2: 1 }));
      // The transaction's entities are this entity manager's now.
      const found = await em.findOne(Author, 101);
      expect(found).toBe(created);
      expect(em.shardOf(found!)).toBe('s2');
    });

    it('a throw rolls back on every shard it touched and is rethrown as it is', async () => {
      const before = await authors();
      const boom = new Error('boom');
      const thrown = await orm.em
        .fork()
        .transactional(async tx => {
          tx.create(Author, { id: 111, name: 'on s0' });
          tx.create(Author, { id: 112, name: 'on s1' });
          await tx.flush();
          throw boom;
        })
        .catch((error: unknown) => error);
      expect(thrown).toBe(boom);
      expect(await authors()).toEqual(before);
      for (const shard of ['s0', 's1']) {
        expect(transactionStatements(shard)).toEqual([expect.stringMatching(/^(begin|start transaction)/), 'rollback']);
      }
    });

    it('what it flushes stays inside the shards’ transactions until the commit', async () => {
      const before = await authors();
      await orm.em.fork().transactional(async tx => {
        tx.create(Author, { id: 121, name: '121 on s1' });
        tx.create(Author, { id: 122, name: '122 on s2' });
        await tx.flush();
        expect(await authors()).toEqual(before);
        expect(await tx.count(Author, { id: { $in: [121, 122] } })).toBe(2);
        expect((await tx.findOneOrFail(Author, { name: '122 on s2' })).id).toBe(122);
      });
      expect(await authors()).toEqual(plus(before, { s1: 1, s2: 1 }));
    });

    it('begins on a shard when it first touches it, and there only, as MikroORM begins on one database', async () => {
      await orm.em.fork().transactional(async tx => {
        await tx.findOneOrFail(Author, 1); // s1
      });
      expect(transactionStatements('s1')).toEqual(['begin', 'commit']);
      expect(statements('s0')).toEqual([]);
      expect(statements('s2')).toEqual([]);
      expect(await orm.em.fork().transactional(() => 'nothing touched')).toBe('nothing touched');
    });

    it('passes isolationLevel and readOnly to every shard, as MikroORM passes them to its database', async () => {
      const options = { isolationLevel: IsolationLevel.SERIALIZABLE, readOnly: true };
      await plain.em.fork().transactional(em => em.findOne(Author, 1), options);
      const expected = lines.filter(line => /(begin|start transaction)/.test(line)).map(line => line.replace(/^\[query\] /, ''));
      lines.length = 0;
      await orm.em.fork().transactional(tx => tx.find(Author, {}), options);
      for (const shard of orm.shardIds) {
        expect(transactionStatements(shard)[0]).toBe(expected[0]);
      }
      // A write in a read-only transaction: what MikroORM does on one database (PostgreSQL refuses it, SQLite has no such mode).
      const plainWrite = await plain.em
        .fork()
        .transactional(em => void em.create(Author, { id: 131, name: 'read only?' }), options)
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      const before = await authors();
      const write = await orm.em
        .fork()
        .transactional(tx => void tx.create(Author, { id: 131, name: 'read only?' }), options)
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(write?.constructor).toBe(plainWrite?.constructor);
      expect(await authors()).toEqual(plainWrite ? before : plus(before, { s2: 1 }));
    });

    it('nested transactional() opens savepoints, beginning the outer transaction where it had not touched yet', async () => {
      const before = await authors();
      const inner = new Error('inner');
      await orm.em.fork().transactional(async tx => {
        tx.create(Author, { id: 141, name: 'outer, s0' });
        await tx.flush();
        const thrown = await tx
          .transactional(async nested => {
            expect(nested.isInTransaction()).toBe(true);
            nested.create(Author, { id: 142, name: 'inner, s1' });
            nested.create(Author, { id: 144, name: 'inner, s0' });
            await nested.flush();
            throw inner;
          })
          .catch((error: unknown) => error);
        expect(thrown).toBe(inner);
        expect(await tx.count(Author, { id: { $gte: 141, $lte: 146 } })).toBe(1);
        await tx.transactional(async nested => {
          nested.create(Author, { id: 145, name: 'inner, s1' });
        });
        expect(await tx.findOne(Author, 145)).not.toBeNull();
      });
      expect(await authors()).toEqual(plus(before, { s0: 1, s1: 1 }));
      expect(transactionStatements('s0')).toEqual(['begin', 'savepoint trx1', 'rollback to savepoint trx1', 'commit']);
      // s1 was first touched by the failed inner transaction: the outer one began there for its savepoint.
      expect(transactionStatements('s1')).toEqual([
        'begin',
        'savepoint trx1',
        'rollback to savepoint trx1',
        'savepoint trx1',
        'release savepoint trx1',
        'commit',
      ]);
    });

    it('inside the callback, the global orm.em is the transaction’s entity manager', async () => {
      const before = await authors();
      await orm.em.transactional(async tx => {
        expect(orm.em.isInTransaction()).toBe(true);
        orm.em.create(Author, { id: 151, name: 'through orm.em' });
        await orm.em.flush();
        expect(await tx.findOne(Author, 151)).not.toBeNull();
      });
      expect(orm.em.isInTransaction()).toBe(false);
      expect(await authors()).toEqual(plus(before, { s1: 1 }));
    });

    it('flushes what the entity manager had pending before, inside the transaction, as MikroORM does', async () => {
      const before = await authors();
      const em = orm.em.fork();
      em.create(Author, { id: 161, name: 'pending before' });
      const loaded = await em.findOneOrFail(Author, 2);
      loaded.name = 'changed before';
      await em.transactional(async () => undefined);
      expect(await authors()).toEqual(plus(before, { s2: 1 }));
      expect((await orm.em.fork().findOneOrFail(Author, 2)).name).toBe('changed before');
      lines.length = 0;
      await em.flush(); // nothing left to write
      expect(lines).toEqual([]);
      loaded.name = 'author-2';
      await em.flush();
    });
  });

  describe('begin(), commit(), rollback()', () => {
    it('commit() flushes and commits on every shard the entity manager touched', async () => {
      const before = await authors();
      const em = orm.em.fork();
      await em.begin();
      expect(em.isInTransaction()).toBe(true);
      em.create(Author, { id: 171, name: 's0' });
      em.create(Author, { id: 172, name: 's1' });
      await em.flush();
      expect(await authors()).toEqual(before);
      await em.commit();
      expect(em.isInTransaction()).toBe(false);
      expect(await authors()).toEqual(plus(before, { s0: 1, s1: 1 }));
    });

    it('rollback() undoes it on every shard', async () => {
      const before = await authors();
      const em = orm.em.fork();
      await em.begin();
      em.create(Author, { id: 181, name: 's1' });
      em.create(Author, { id: 182, name: 's2' });
      await em.flush();
      await em.rollback();
      expect(em.isInTransaction()).toBe(false);
      expect(await authors()).toEqual(before);
    });

    it('commit() and rollback() without a transaction throw what MikroORM throws', async () => {
      const expected = await plain.em
        .fork()
        .commit()
        .catch((error: unknown) => error as Error);
      const em = orm.em.fork();
      await em.begin();
      await em.commit();
      for (const call of [() => em.commit(), () => em.rollback()]) {
        const error = await call().catch((thrown: unknown) => thrown as Error);
        expect(error).toBeInstanceOf(ValidationError);
        expect(error?.message).toBe(expected?.message);
      }
    });

    it('enlist(shard) gives the shard’s fork inside the transaction, begun there', async () => {
      const before = await authors();
      const em = orm.em.fork();
      await em.begin();
      const fork = await em.enlist('s2');
      expect(fork).toBe(em.on('s2'));
      await fork.getConnection().execute(`insert into author (id, name) values (191, 'raw')`, [], 'run', fork.getTransactionContext());
      expect(await em.count(Author, { id: 191 })).toBe(1);
      await em.rollback();
      expect(await authors()).toEqual(before);
      const outside = orm.em.fork();
      expect(await outside.enlist('s0')).toBe(outside.on('s0'));
      expect(outside.on('s0').isInTransaction()).toBe(false);
    });
  });

  describe('propagation, as in MikroORM', () => {
    it('REQUIRED joins the transaction under way; REQUIRES_NEW commits on its own', async () => {
      const before = await authors();
      const failed = new Error('outer fails');
      const thrown = await orm.em
        .fork()
        .transactional(async tx => {
          tx.create(Author, { id: 201, name: 'outer, s0' });
          // Flushed: an entity still pending would be written by the new transaction too, as in MikroORM.
          await tx.flush();
          await tx.transactional(joined => expect(joined).toBe(tx), { propagation: TransactionPropagation.REQUIRED });
          await tx.transactional(
            async fresh => {
              expect(fresh).not.toBe(tx);
              fresh.create(Author, { id: 202, name: 'independent, s1' });
            },
            { propagation: TransactionPropagation.REQUIRES_NEW },
          );
          throw failed;
        })
        .catch((error: unknown) => error);
      expect(thrown).toBe(failed);
      expect(await authors()).toEqual(plus(before, { s1: 1 }));
    });

    it('MANDATORY outside a transaction and NEVER inside one throw what MikroORM throws', async () => {
      const outside = await plain.em
        .fork()
        .transactional(() => undefined, { propagation: TransactionPropagation.MANDATORY })
        .catch((error: unknown) => error as Error);
      const mandatory = await orm.em
        .fork()
        .transactional(() => undefined, { propagation: TransactionPropagation.MANDATORY })
        .catch((error: unknown) => error as Error);
      expect(mandatory).toBeInstanceOf(TransactionStateError);
      expect(mandatory?.message).toBe(outside?.message);
      const never = await orm.em
        .fork()
        .transactional(tx => tx.transactional(() => undefined, { propagation: TransactionPropagation.NEVER }))
        .catch((error: unknown) => error as Error);
      expect(never).toBeInstanceOf(TransactionStateError);
    });

    it('NOT_SUPPORTED runs outside the transaction; ignoreNestedTransactions runs nested calls in the same one', async () => {
      const before = await authors();
      const thrown = await orm.em
        .fork()
        .transactional(async tx => {
          tx.create(Author, { id: 211, name: 's1' });
          await tx.flush();
          await tx.transactional(
            async outside => {
              expect(outside.isInTransaction()).toBe(false);
              outside.create(Author, { id: 212, name: 's2, committed on its own' });
            },
            { propagation: TransactionPropagation.NOT_SUPPORTED },
          );
          throw new Error('rolls back 211 only');
        })
        .catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(Error);
      expect(await authors()).toEqual(plus(before, { s2: 1 }));
      await orm.em.fork().transactional(
        async tx => {
          await tx.transactional(same => expect(same).toBe(tx));
        },
        { ignoreNestedTransactions: true },
      );
    });
  });

  describe('modes', () => {
    it("'single' refuses a second shard before anything runs there, and the transaction rolls back", async () => {
      const before = await authors();
      lines.length = 0;
      const thrown = await orm.em
        .fork()
        .transactional(
          async tx => {
            tx.create(Author, { id: 221, name: 's2' });
            await tx.flush();
            await tx.findOne(Author, 1); // s1
          },
          { mode: 'single' },
        )
        .catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(ShardingError);
      expect(thrown).toMatchObject({ code: 'TRANSACTION_SPANS_SHARDS', shard: 's1' });
      expect((thrown as Error).message).toMatch(/on shard "s2" and was asked to touch shard "s1"/);
      expect(shardFailureOf(thrown)).toBeUndefined();
      expect(statements('s1')).toEqual([]);
      expect(await authors()).toEqual(before);
    });

    it("'single' refuses a flush that writes two shards before either writes", async () => {
      const before = await authors();
      const thrown = await orm.em
        .fork()
        .transactional(
          async tx => {
            tx.create(Author, { id: 231, name: 's0' });
            tx.create(Author, { id: 232, name: 's1' });
          },
          { mode: 'single' },
        )
        .catch((error: unknown) => error);
      expect(thrown).toMatchObject({ code: 'TRANSACTION_SPANS_SHARDS' });
      expect(lines.filter(line => /insert|begin/.test(line))).toEqual([]);
      expect(await authors()).toEqual(before);
    });

    it("a fleet whose transactionMode is 'single' refuses a flush writing two shards, outside transactional() too", async () => {
      await using single = await openFleet(topology, { ...logging, transactionMode: 'single' }, false);
      const before = await authors();
      const em = single.em.fork();
      em.create(Author, { id: 241, name: 's1' });
      em.create(Author, { id: 242, name: 's2' });
      lines.length = 0;
      await expect(em.flush()).rejects.toMatchObject({ code: 'TRANSACTION_SPANS_SHARDS' });
      expect(lines.filter(line => /insert|begin/.test(line))).toEqual([]);
      expect(await authors()).toEqual(before);
      const one = single.em.fork();
      one.create(Author, { id: 243, name: 's0' });
      await one.flush();
      expect(await authors()).toEqual(plus(before, { s0: 1 }));
    });

    it("'multi' commits shard after shard; a failed commit rolls back the rest and names the shards that committed", async () => {
      // A deferred constraint fails at COMMIT: here, a book on s2 whose author is missing there.
      await deferredBookAuthor(orm, 's2');
      try {
        const before = { authors: await authors(), books: await committedRows(orm, 'book') };
        const thrown = await orm.em
          .fork()
          .transactional(async tx => {
            await tx.findOne(Author, 3); // s0 first: it commits first
            tx.create(Author, { id: 252, name: 's0' }, { shard: 's0' });
            tx.create(Book, { id: 253, title: 'orphan', author: tx.getReference(Author, 999, { shard: 's2' }) }, { shard: 's2' });
            tx.create(Author, { id: 254, name: 's2' }, { shard: 's2' });
          })
          .catch((error: unknown) => error as Error);
        expect(shardFailureOf(thrown)).toMatchObject({ operation: 'transaction', shard: 's2', done: ['s0'] });
        expect((thrown as Error).message).toMatch(/\(shard s2; transaction committed on s0\)$/);
        expect(await authors()).toEqual(plus(before.authors, { s0: 1 }));
        expect(await committedRows(orm, 'book')).toEqual(before.books);
      } finally {
        await orm.shard('s2').schema.refresh();
        const em = orm.em.fork();
        em.create(Author, { id: 2, name: 'author-2' });
        await em.flush();
      }
    });

    it("'twopc' on a fleet without two-phase commit throws TWO_PHASE_UNAVAILABLE before the callback runs", async () => {
      let ran = false;
      const thrown = await orm.em
        .fork()
        .transactional(() => void (ran = true), { mode: 'twopc' })
        .catch((error: unknown) => error);
      expect(thrown).toMatchObject({ code: 'TWO_PHASE_UNAVAILABLE' });
      expect((thrown as Error).message).toMatch(topology.name === 'sqlite' ? /shard "s0" is SQLite; 'twopc' needs PostgreSQL/ : /needs `twoPhaseCommit/);
      expect(ran).toBe(false);
    });
  });

  describe('after the transaction', () => {
    it('its entity manager refuses any work once the transaction committed or rolled back (TRANSACTION_CLOSED)', async () => {
      let committed: ShardedEntityManager | undefined;
      await orm.em.fork().transactional(tx => void (committed = tx));
      let rolledBack: ShardedEntityManager | undefined;
      await orm.em
        .fork()
        .transactional(tx => {
          rolledBack = tx;
          throw new Error('rolled back');
        })
        .catch(() => undefined);
      const before = await authors();
      for (const em of [committed!, rolledBack!]) {
        await expect(em.find(Author, {})).rejects.toMatchObject({ code: 'TRANSACTION_CLOSED' });
        await expect(em.findOne(Author, 1)).rejects.toMatchObject({ code: 'TRANSACTION_CLOSED' });
        em.create(Author, { id: 261, name: 'late' });
        await expect(em.flush()).rejects.toMatchObject({ code: 'TRANSACTION_CLOSED' });
      }
      expect(await authors()).toEqual(before);
    });
  });
}

/** Recreates `book` on one shard with its author foreign key checked at commit (deferred) instead of at the insert. */
async function deferredBookAuthor(orm: ShardedMikroORM, shard: string): Promise<void> {
  const connection = orm.shard(shard).em.getConnection();
  if (orm.shard(shard).driver.getDependencies().includes('pg')) {
    await connection.execute('alter table book drop constraint book_author_id_foreign');
    await connection.execute(
      'alter table book add constraint book_author_id_foreign foreign key (author_id) references author (id) deferrable initially deferred',
    );
    return;
  }
  await connection.execute('drop table book');
  await connection.execute(
    'create table book (id integer not null primary key, title text not null, price numeric null, author_id integer not null references author (id) deferrable initially deferred)',
  );
}
