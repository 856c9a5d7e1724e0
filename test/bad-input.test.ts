import { defineEntity, MikroORM, p, ValidationError } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, type ShardedEntityManager, type ShardId } from 'mikro-orm-sharding';
import { Author, Book, entities } from './support/entities.ts';
import { captured, expectRefused, type BadInputRow } from './support/bad-input.ts';
import { allRows } from './support/fleet.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

/** Lives on the `log` shard only; `a` and `b` hold authors, books and tags. */
const NoteSchema = defineEntity({ name: 'Note', properties: { id: p.integer().primary().autoincrement(false), text: p.string() } });
class Note extends NoteSchema.class {}
NoteSchema.setClass(Note);

const HUGE = 'x'.repeat(1_000_000);
const pick = (id: unknown): ShardId => (Number(id) % 2 === 0 ? 'a' : 'b');

let topology: Topology;
let orm: ShardedMikroORM;
let plain: MikroORM;

beforeAll(async () => {
  topology = sqliteTopology();
  orm = await ShardedMikroORM.init({
    ...topology.shared,
    shards: {
      a: { ...topology.database('a'), entities },
      b: { ...topology.database('b'), entities },
      log: { ...topology.database('log'), entities: [Note] },
    },
    // Authors route by name where the name says so, else by id; a book goes with its author.
    shardChooser: ({ entity, em }) => {
      if (entity instanceof Note) return 'log';
      if (entity instanceof Book) return em.shardOf(entity.author) ?? pick(entity.author.id);
      const { id, name } = entity as Author;
      return ({ 'to-log': 'log', unknown: 'nope', huge: HUGE } as Record<string, string>)[name] ?? pick(id);
    },
    idChooser: ({ entityName, id }) => (entityName === 'Note' ? ['log'] : Number(id) === 666 ? ['log'] : [pick(id)]),
    queryChooser: ({ entityName, where }) => (entityName === 'Note' ? ['log'] : (where as { name?: string }).name === 'via-log' ? ['a', 'log'] : ['a', 'b']),
  });
  await orm.schema.create();
  const em = orm.em.fork();
  em.create(Author, { id: 2, name: 'on-a', books: [{ id: 20, title: 'kept' }] } as never);
  em.create(Author, { id: 3, name: 'on-b' });
  em.create(Note, { id: 1, text: 'on-log' });
  await em.flush();
  plain = await MikroORM.init({ ...topology.shared, ...topology.database('plain'), entities });
});

afterAll(async () => {
  await orm?.close(true);
  await plain?.close(true);
  await topology?.dispose();
});

/** A valid new author on `a`, then `bad` in the same flush: the valid one must not be written either. */
const flushWith = (bad: () => Record<string, unknown>) => async (em: ShardedEntityManager) => {
  em.create(Author, { id: 100, name: 'fine', books: [{ id: 1000, title: 'fine' }] } as never);
  em.create(Author, bad() as never);
  await em.flush();
};

const rows: BadInputRow[] = [
  {
    name: 'a shard chooser routing to a shard without the entity',
    run: flushWith(() => ({ id: 5, name: 'to-log' })),
    error: 'ENTITY_NOT_ON_SHARD',
    message:
      /^Author#5 was routed to shard "log" by shardChooser, but that shard's `entities` do not include Author\. Route Author to a shard that declares it \("a", "b"\).*Nothing was written\.$/,
  },
  {
    name: '{ shard } on create naming a shard without the entity',
    run: em => em.create(Author, { id: 7, name: 'x' }, { shard: 'log' }),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /^Author was routed to shard "log" by the \{ shard \} option.*"a", "b"/,
  },
  {
    name: '{ shard } on find',
    run: em => em.find(Author, {}, { shard: 'log' }),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /shard "log" by the \{ shard \} option.*Nothing was read or written\.$/,
  },
  {
    name: '{ shard } on findOne by id',
    run: em => em.findOne(Author, 2, { shard: 'log' }),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /Author was routed to shard "log"/,
  },
  {
    name: '{ shard } on findOne by query',
    run: em => em.findOne(Author, { name: 'on-a' }, { shard: 'log' }),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /shard "log"/,
  },
  { name: '{ shard } on count', run: em => em.count(Author, {}, { shard: 'log' }), error: 'ENTITY_NOT_ON_SHARD', message: /shard "log"/ },
  { name: '{ shard } on findAndCount', run: em => em.findAndCount(Author, {}, { shard: 'log' }), error: 'ENTITY_NOT_ON_SHARD', message: /shard "log"/ },
  { name: '{ shard } on getReference', run: em => em.getReference(Author, 2, { shard: 'log' }), error: 'ENTITY_NOT_ON_SHARD', message: /shard "log"/ },
  {
    name: '{ shard } on nativeUpdate',
    run: em => em.nativeUpdate(Author, {}, { name: 'changed' }, { shard: 'log' }),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /shard "log"/,
  },
  { name: '{ shard } on nativeDelete', run: em => em.nativeDelete(Author, {}, { shard: 'log' }), error: 'ENTITY_NOT_ON_SHARD', message: /shard "log"/ },
  {
    name: 'an id chooser naming a shard without the entity',
    run: em => em.findOne(Author, 666),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /^Author was routed to shard "log" by idChooser/,
  },
  {
    name: 'a query chooser naming a shard without the entity',
    run: em => em.nativeDelete(Author, { name: 'via-log' }),
    error: 'ENTITY_NOT_ON_SHARD',
    message: /^Author was routed to shard "log" by queryChooser/,
  },
  {
    name: 'an unknown shard from the shard chooser',
    run: flushWith(() => ({ id: 5, name: 'unknown' })),
    error: 'UNKNOWN_SHARD',
    message: /^shardChooser returned unknown shard "nope" for Author#5; known shards are "a", "b", "log"\.$/,
  },
  {
    name: 'an unknown shard in { shard }',
    run: em => em.find(Author, {}, { shard: 'nope' }),
    error: 'UNKNOWN_SHARD',
    message: /^Unknown shard "nope" in the \{ shard \} option; known shards are "a", "b", "log"\.$/,
  },
  {
    name: 'an unknown shard passed to em.on()',
    run: em => em.on('nope'),
    error: 'UNKNOWN_SHARD',
    message: /^Unknown shard "nope" passed to em\.on\(\); known shards/,
  },
  {
    name: 'an unknown shard passed to orm.shard()',
    run: () => orm.shard('nope'),
    error: 'UNKNOWN_SHARD',
    message: /^Unknown shard "nope" passed to orm\.shard\(\); known shards/,
  },
  {
    name: 'a 1 MB shard id from the shard chooser',
    run: flushWith(() => ({ id: 5, name: 'huge' })),
    error: 'UNKNOWN_SHARD',
    message: /^shardChooser returned unknown shard "x{64}…" for Author#5;/,
  },
  {
    name: 'a 1 MB shard id in { shard }',
    run: em => em.count(Author, {}, { shard: HUGE }),
    error: 'UNKNOWN_SHARD',
    message: /^Unknown shard "x{64}…" in the \{ shard \} option;/,
  },
  { name: 'a 1 MB shard id passed to em.on()', run: em => em.on(HUGE), error: 'UNKNOWN_SHARD', message: /^Unknown shard "x{64}…" passed to em\.on\(\);/ },
  // Characters a URL is made of, so that masking secrets must not take quadratic time over them.
  {
    name: 'a 1 MB shard id of URL characters',
    run: em => em.on('a-'.repeat(500_000)),
    error: 'UNKNOWN_SHARD',
    message: /^Unknown shard "(a-){32}…" passed to em\.on\(\);/,
  },
  {
    name: 'a 1 MB shard id on create',
    run: em => em.create(Author, { id: 9, name: 'x' }, { shard: HUGE }),
    error: 'UNKNOWN_SHARD',
    message: /^Unknown shard "x{64}…" in the \{ shard \} option;/,
  },
  { name: 'persist(null)', run: em => em.persist(null as never), error: ValidationError, message: /^Trying to persist not discovered entity of type null\.$/ },
  {
    name: 'persist() of an entity and a plain object: neither is taken',
    run: async em => {
      const author = em.create(Author, { id: 11, name: 'not written' }, { persist: false });
      em.persist([author, { id: 12 }] as never);
      await em.flush();
    },
    error: ValidationError,
    message: /^Trying to persist not discovered entity of type object\.$/,
  },
];

describe('bad input: a typed error naming shard, entity and value, and nothing written on any shard', () => {
  it.each(rows)('$name', row => expectRefused(orm, row));

  it('keeps the whole value on the error while the message shows 64 characters of it', async () => {
    const error = (await captured(() => orm.em.fork().on(HUGE))) as ShardingError;
    expect(error.value).toBe(HUGE);
    const entity = (await captured(() => orm.em.fork().find(Author, {}, { shard: 'log' }))) as ShardingError;
    expect([entity.shard, entity.entity, entity.value]).toEqual(['log', 'Author', 'log']);
  });

  it('writes the valid entities once the bad one is gone, so the refusals above wrote nothing by choice', async () => {
    const em = orm.em.fork();
    em.create(Author, { id: 100, name: 'fine', books: [{ id: 1000, title: 'fine' }] } as never);
    await em.flush();
    expect((await allRows(orm)).a).toMatchObject({ author: 2, book: 2 });
    await orm.em.fork().nativeDelete(Book, { id: 1000 });
    await orm.em.fork().nativeDelete(Author, { id: 100 });
  });
});

describe('persist() and remove() of a non-entity: MikroORM’s own error', () => {
  const values: [string, unknown][] = [
    ['a plain object', { id: 1, name: 'x' }],
    ['a number', 5],
    ['a string', 'x'],
    ['a date', new Date(0)],
    ['an entity class', Author],
    ['a list holding a plain object', [{}]],
  ];

  it.each(values)('persist(%s) throws what plain MikroORM throws', async (_, value) => {
    const expected = await captured(() => plain.em.fork().persist(value as never));
    const thrown = await captured(() => orm.em.fork().persist(value as never));
    expect(thrown).toBeInstanceOf((expected as Error).constructor);
    expect((thrown as Error).message).toBe((expected as Error).message);
  });

  it.each([...values, ['null', null], ['undefined', undefined]] as [string, unknown][])('remove(%s) throws what plain MikroORM throws', async (_, value) => {
    const expected = await captured(() => plain.em.fork().remove(value as never));
    const thrown = await captured(() => orm.em.fork().remove(value as never));
    expect(thrown).toBeInstanceOf((expected as Error).constructor);
    expect((thrown as Error).message).toBe((expected as Error).message);
  });

  it('persist(undefined) does nothing, as in MikroORM', async () => {
    const before = await allRows(orm);
    const em = orm.em.fork();
    em.persist(undefined as never);
    await em.flush();
    expect(await allRows(orm)).toEqual(before);
  });
});

describe('lists of shards in messages', () => {
  it('names the first few shards and counts the rest', async () => {
    const shards = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`shard-${i}`, topology.database(`many-${i}`)]));
    await using many = await ShardedMikroORM.init({
      ...topology.shared,
      entities,
      shards,
      shardChooser: () => 'nope',
      idChooser: () => Object.keys(shards),
      connect: false,
    });
    const em = many.em.fork();
    const unknown = (await captured(() => em.on('nope'))) as ShardingError;
    expect(unknown.message).toBe('Unknown shard "nope" passed to em.on(); known shards are "shard-0", "shard-1", "shard-2", "shard-3", "shard-4" and 7 more.');
    const ambiguous = (await captured(() => em.getReference(Author, 1))) as ShardingError;
    expect(ambiguous.code).toBe('AMBIGUOUS_SHARD');
    expect(ambiguous.message).toMatch(/names 12 candidate shards \("shard-0", .*"shard-4" and 7 more\)/);
  });
});
