import {
  defineEntity,
  DriverException,
  MikroORM,
  NotFoundError,
  p,
  TableExistsException,
  TableNotFoundException,
  UniqueConstraintViolationException,
  ValidationError,
} from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardFailureOf, ShardingError, type ShardedEntityManager, type ShardedMikroORM } from 'mikro-orm-sharding';
import { Author, Book, entities } from './support/entities.ts';
import { openFleet, rowsPerShard } from './support/fleet.ts';
import { topologies, type Topology } from './support/topology.ts';

// One error policy whatever the shard count: what a shard's MikroORM throws arrives as MikroORM throws it on one
// database (same class, same message plus the shard), and shardFailureOf() tells the shard and what the others did.

/** An entity whose table is dropped after the schema is made: every read of it fails on the database. */
const NoteSchema = defineEntity({ name: 'Note', properties: { id: p.integer().primary().autoincrement(false), text: p.string() } });
class Note extends NoteSchema.class {}
NoteSchema.setClass(Note);

const SHARD_NOTE = / \(shard s\d[^)]*\)$/;

async function failure(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome, 'the call should have failed').toBeInstanceOf(Error);
  return outcome as Error;
}

/** The error as plain MikroORM throws it, then the sharded one: same class, same message but for the shard note. */
async function expectSameError(plain: () => Promise<unknown>, sharded: () => Promise<unknown>): Promise<Error> {
  const expected = await failure(plain());
  const actual = await failure(sharded());
  expect(actual.constructor).toBe(expected.constructor);
  expect(actual.message.replace(SHARD_NOTE, '')).toBe(expected.message);
  expect(actual.message).toMatch(SHARD_NOTE);
  return actual;
}

describe.each(['sqlite', 'postgresql'] as const)('one error policy (%s)', driver => {
  let topology: Topology;
  let orm: ShardedMikroORM;
  let plain: MikroORM;

  beforeAll(async () => {
    topology = topologies[driver]();
    orm = await openFleet(topology, { entities: [...entities, Note] });
    plain = await MikroORM.init({ ...topology.shared, ...topology.database('plain'), entities: [...entities, Note] });
    await plain.schema.refresh();
    const em = orm.em.fork();
    const one = plain.em.fork();
    for (const id of [1, 2, 3, 4, 5, 6]) {
      em.create(Author, { id, name: `author-${id}` });
      one.create(Author, { id, name: `author-${id}` });
    }
    await em.flush();
    await one.flush();
    for (const shard of orm.shardIds) {
      await orm.shard(shard).em.fork().getConnection().execute('drop table note');
    }
    await plain.em.fork().getConnection().execute('drop table note');
  });

  afterAll(async () => {
    await orm?.close(true);
    await plain?.close(true);
    await topology?.dispose();
  });

  const sharded = (): ShardedEntityManager => orm.em.fork();
  const single = () => plain.em.fork();

  describe('a missing table gives one error, whatever the path', () => {
    it('merged find on the fast path (a prepared statement per shard)', async () => {
      const error = await expectSameError(
        () => single().find(Note, { id: { $gt: 0 } }, { orderBy: { id: 'asc' }, limit: 5 }),
        () => sharded().find(Note, { id: { $gt: 0 } }, { orderBy: { id: 'asc' }, limit: 5 }),
      );
      expect(error).toBeInstanceOf(TableNotFoundException);
      expect(shardFailureOf(error)).toMatchObject({ operation: 'find', shard: 's0', done: [], failed: [{ shard: 's0' }, { shard: 's1' }, { shard: 's2' }] });
      expect(shardFailureOf(error)!.failed[0]!.error).toBe(error);
    });

    it('merged find on the general path, one shard, a deep page, findOne by key and by query, findAndCount', async () => {
      // The calls as both entity managers take them.
      type Reads = {
        find(entity: typeof Note, where: object, options?: object): Promise<unknown>;
        findOne(entity: typeof Note, where: unknown): Promise<unknown>;
        findAndCount(entity: typeof Note, where: object, options?: object): Promise<unknown>;
      };
      const calls: [RegExp, (em: Reads) => Promise<unknown>][] = [
        [/^find$/, em => em.find(Note, {}, { fields: ['text'], orderBy: { id: 'asc' } })],
        [/^find$/, em => em.find(Note, {}, { orderBy: { id: 'asc' }, limit: 5, offset: 1000 })],
        [/^findOne$/, em => em.findOne(Note, 4)],
        [/^find$/, em => em.findOne(Note, { text: 'x' })], // a query: the first row of a merged find
        [/^(find|count)$/, em => em.findAndCount(Note, {}, { limit: 2 })], // whichever failed first
      ];
      for (const [operation, call] of calls) {
        const error = await expectSameError(
          () => call(single() as unknown as Reads),
          () => call(sharded() as unknown as Reads),
        );
        expect(error).toBeInstanceOf(TableNotFoundException);
        expect(shardFailureOf(error)?.operation).toMatch(operation);
      }
      const one = await expectSameError(
        () => single().find(Note, {}),
        () => sharded().find(Note, {}, { shard: 's1' }),
      );
      expect(shardFailureOf(one)).toEqual({ operation: 'find', shard: 's1', done: [], failed: [{ shard: 's1', error: one }] });
    });

    it('merged counts, compiled and through em.count', async () => {
      for (const options of [{}, { cache: false }]) {
        const error = await expectSameError(
          () => single().count(Note, {}, options),
          () => sharded().count(Note, {}, options),
        );
        expect(error).toBeInstanceOf(TableNotFoundException);
        expect(shardFailureOf(error)?.operation).toBe('count');
      }
    });
  });

  it('a unique violation of a one-shard flush arrives as UniqueConstraintViolationException, naming its shard', async () => {
    const plainEm = single();
    plainEm.create(Author, { id: 4, name: 'again' });
    const em = sharded();
    em.create(Author, { id: 4, name: 'again' });
    const error = await expectSameError(
      () => plainEm.flush(),
      () => em.flush(),
    );
    expect(error).toBeInstanceOf(UniqueConstraintViolationException);
    expect(error.message).toMatch(/ \(shard s1\)$/);
    expect(shardFailureOf(error)).toMatchObject({ operation: 'flush', shard: 's1', done: [] });
  });

  it("MikroORM's ValidationError of a shard's flush arrives as ValidationError (it never reached a database)", async () => {
    const plainEm = single();
    plainEm.create(Author, { id: 40 } as never);
    const em = sharded();
    em.create(Author, { id: 40 } as never);
    const error = await expectSameError(
      () => plainEm.flush(),
      () => em.flush(),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(shardFailureOf(error)?.shard).toBe('s1');
  });

  it('a failed multi-shard flush commits nothing, and names every shard that failed', async () => {
    const before = await rowsPerShard(orm, 'author');
    const em = sharded();
    await em.findOne(Author, 2); // s2's fork exists, with nothing to write
    em.create(Author, { id: 1, name: 'duplicate' }); // s1: fails
    em.create(Author, { id: 9, name: 'new' }); // s0: written, then rolled back
    const error = await failure(em.flush());
    expect(error).toBeInstanceOf(UniqueConstraintViolationException);
    expect(shardFailureOf(error)).toMatchObject({ operation: 'flush', shard: 's1', done: [], failed: [{ shard: 's1', error }] });
    expect(error.message).toMatch(/ \(shard s1\)$/);
    expect(await rowsPerShard(orm, 'author')).toEqual(before);

    const twice = sharded();
    twice.create(Author, { id: 4, name: 'duplicate' }); // s1
    twice.create(Author, { id: 5, name: 'duplicate' }); // s2
    twice.create(Author, { id: 12, name: 'new' }); // s0
    const both = await failure(twice.flush());
    const report = shardFailureOf(both)!;
    expect(report).toMatchObject({ shard: 's1', done: [] });
    expect(report.failed.map(f => f.shard)).toEqual(['s1', 's2']);
    expect(report.failed[1]!.error).toBeInstanceOf(UniqueConstraintViolationException);
    expect(both.message).toMatch(/ \(shard s1; also failed on s2\)$/);
    expect(await rowsPerShard(orm, 'author')).toEqual(before);
  });

  it('a multi-shard flush of forks with their own event manager commits nothing either', async () => {
    const before = await rowsPerShard(orm, 'author');
    const em = orm.em.fork({ freshEventManager: true });
    em.create(Author, { id: 6, name: 'duplicate' }); // s0: fails
    em.create(Author, { id: 13, name: 'new' }); // s1: rolled back
    const error = await failure(em.flush());
    expect(shardFailureOf(error)).toMatchObject({ operation: 'flush', shard: 's0', done: [] });
    expect(await rowsPerShard(orm, 'author')).toEqual(before);
  });

  it('nativeUpdate reports as done only the shards whose rows changed', async () => {
    await orm.shard('s2').em.fork().getConnection().execute('alter table author rename to writer');
    try {
      const error = await failure(sharded().nativeUpdate(Author, { id: 3 }, { name: 'renamed' }));
      expect(error).toBeInstanceOf(TableNotFoundException);
      expect(shardFailureOf(error)).toMatchObject({ operation: 'nativeUpdate', shard: 's2', done: ['s0'] });
    } finally {
      await orm.shard('s2').em.fork().getConnection().execute('alter table writer rename to author');
    }
  });

  it('orm.schema reports the shards that changed', async () => {
    await orm.shard('s0').schema.drop();
    try {
      const error = await failure(orm.schema.create());
      expect(error).toBeInstanceOf(TableExistsException);
      expect(shardFailureOf(error)).toMatchObject({ operation: 'schema.create', shard: 's1', done: ['s0'] });
      expect(shardFailureOf(error)!.failed.map(f => f.shard)).toEqual(['s1', 's2']);
    } finally {
      await orm.shard('s0').schema.refresh();
    }
  });

  it('findOneOrFail throws NotFoundError as MikroORM does', async () => {
    const error = await failure(sharded().findOneOrFail(Author, 77));
    const expected = await failure(single().findOneOrFail(Author, 77));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(expected.message);
    expect(shardFailureOf(error)).toBeUndefined();
  });

  it('routing mistakes stay ShardingErrors with stable codes; query refusals say what cannot be merged', async () => {
    const unknown = await failure(sharded().find(Author, {}, { shard: 'nope' }));
    expect(unknown).toBeInstanceOf(ShardingError);
    expect((unknown as ShardingError).code).toBe('UNKNOWN_SHARD');
    expect(shardFailureOf(unknown)).toBeUndefined();
    const refused = await failure(sharded().find(Author, {}, { groupBy: ['name'] }));
    expect((refused as ShardingError).code).toBe('UNMERGEABLE_QUERY');
    expect(refused.message).toMatch(/^Cannot merge Author results of several shards: /);
    // A key MikroORM itself refuses gets MikroORM's error, as with one database.
    const typo = await failure(sharded().find(Author, {}, { orderBy: { nickname: 'asc' } as never }));
    const expected = await failure(single().find(Author, {}, { orderBy: { nickname: 'asc' } as never }));
    expect(typo.constructor).toBe(expected.constructor);
    expect(typo).not.toBeInstanceOf(ShardingError);
  });

  it('a driver error is the same DriverException subclass on every path, and the shard is readable from it', async () => {
    const error = await failure(sharded().find(Note, {}, { orderBy: { id: 'desc' }, limit: 1 }));
    expect(error).toBeInstanceOf(DriverException);
    expect(Object.keys(error)).not.toContain('shard'); // nothing added to the error's own enumerable fields
  });
});

describe('docs/errors.md', () => {
  let topology: Topology;
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    topology = topologies.sqlite();
    orm = await openFleet(topology);
    const em = orm.em.fork();
    em.create(Author, { id: 1, name: 'one' });
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  it('runs the sample that reads the shard of a unique violation', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const em = orm.em.fork();
    em.create(Author, { id: 1, name: 'duplicate' });
    em.create(Author, { id: 3, name: 'new' });
    const thrown = await (async () => {
      // --- the sample, as written in docs/errors.md
      try {
        await em.flush();
      } catch (error) {
        if (error instanceof UniqueConstraintViolationException) {
          const { shard, done } = shardFailureOf(error)!;
          console.warn(`duplicate on ${shard}; committed meanwhile on: ${done.join(', ') || 'no shard'}`);
        }
        throw error;
      }
      // ---
    })().catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(UniqueConstraintViolationException);
    expect(warn).toHaveBeenCalledWith('duplicate on s1; committed meanwhile on: no shard');
    warn.mockRestore();
  });

  it('runs the ShardingError sample: nothing was written', async () => {
    const before = await rowsPerShard(orm, 'author');
    const em = orm.em.fork();
    em.create(Author, { id: 7, name: 'misrouted' }, { shard: 's0' });
    em.create(Book, { id: 70, title: 'elsewhere', author: em.create(Author, { id: 8, name: 'other' }, { shard: 's2' }) }, { shard: 's1' });
    let nothingWritten = false;
    const thrown = await (async () => {
      // --- the sample, as written in docs/errors.md
      try {
        await em.flush();
      } catch (error) {
        if (error instanceof ShardingError && error.code === 'CROSS_SHARD_REFERENCE') {
          // nothing was written on any shard
          nothingWritten = true;
        }
        throw error;
      }
      // ---
    })().catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(ShardingError);
    expect(nothingWritten).toBe(true);
    expect(await rowsPerShard(orm, 'author')).toEqual(before);
    expect(await rowsPerShard(orm, 'book')).toEqual({ s0: 0, s1: 0, s2: 0 });
  });
});
