import { defineEntity, p, raw } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { Author, Book, Tag } from './support/entities.ts';
import { openFleet, seedRows, shardOfId } from './support/fleet.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

const bornAfter = { name: 'bornAfter', entity: [Author], cond: (args: Record<string, number>) => ({ born: { $gt: args.year } }), default: false };

let topology: Topology;
let orm: ShardedMikroORM;

beforeAll(async () => {
  topology = sqliteTopology();
  orm = await openFleet(topology, { filters: { rated: { name: 'rated', entity: ['Author'], cond: { rating: { $ne: null } }, default: true } } });
  const em = orm.em.fork();
  for (const row of seedRows()) {
    em.create(Author, { id: row.id, name: row.name, born: row.born, rating: row.rating });
  }
  await em.flush();
});

afterAll(async () => {
  await orm?.close();
  await topology?.dispose();
});

const rows = seedRows();
const expected = (keep: (row: (typeof rows)[number]) => boolean) => rows.filter(keep).map(row => row.id);

describe('filters across shards', () => {
  it('applies a default config filter to merged finds and counts, and honours turning it off', async () => {
    const rated = expected(row => row.rating !== null);
    const found = await orm.em.fork().find(Author, {}, { orderBy: { id: 'asc' } });
    expect(found.map(a => a.id)).toEqual(rated);
    expect(await orm.em.fork().count(Author, {})).toBe(rated.length);
    const all = await orm.em.fork().find(Author, {}, { orderBy: { id: 'asc' }, filters: false });
    expect(all.map(a => a.id)).toEqual(rows.map(row => row.id));
    expect(await orm.em.fork().count(Author, {}, { filters: false })).toBe(rows.length);
  });

  it('applies a filter added to one shard’s own fork, on that shard only', async () => {
    const em = orm.em.fork();
    em.on('s1').addFilter(bornAfter);
    em.on('s1').setFilterParams('bornAfter', { year: 1970 });
    const keep = (row: (typeof rows)[number]) => row.rating !== null && (shardOfId(row.id) !== 's1' || (row.born !== null && row.born > 1970));
    const found = await em.find(Author, {}, { orderBy: { born: 'desc', id: 'asc' }, filters: { bornAfter: true } });
    expect(found.map(a => a.id).sort((a, b) => a - b)).toEqual(expected(keep));
    expect(await em.count(Author, {}, { filters: { bornAfter: true } })).toBe(expected(keep).length);
  });

  it('refuses to merge by a raw SQL order key, naming what to do', async () => {
    await expect(orm.em.fork().find(Author, {}, { orderBy: { [raw('length(name)')]: 'asc' } })).rejects.toMatchObject({ code: 'UNMERGEABLE_QUERY' });
    const oneShard = await orm.em.fork().find(Author, {}, { orderBy: { [raw('length(name)')]: 'asc' }, shard: 's0' });
    expect(oneShard.length).toBeGreaterThan(0);
  });
});

const NoteSchema = defineEntity({ name: 'Note', properties: { id: p.integer().primary().autoincrement(false), text: p.string() } });
class Note extends NoteSchema.class {}
NoteSchema.setClass(Note);

describe('shards holding only some entities', () => {
  it('looks primary keys up without touching shards that lack the entity', async () => {
    const fleet = await ShardedMikroORM.init({
      ...topology.shared,
      entities: [Author, Book, Tag],
      shards: { main: topology.database('main'), notes: { ...topology.database('notes'), entities: [Note] } },
      shardChooser: ({ entityName }) => (entityName === 'Note' ? 'notes' : 'main'),
      idChooser: ({ entityName }) => (entityName === 'Note' ? ['notes'] : ['main']),
      queryChooser: ({ entityName }) => (entityName === 'Note' ? ['notes'] : ['main']),
    });
    try {
      await fleet.schema.refresh();
      const writer = fleet.em.fork();
      writer.create(Note, { id: 1, text: 'hello' });
      writer.create(Author, { id: 1, name: 'main author' });
      await writer.flush();
      const em = fleet.em.fork();
      expect((await em.find(Note, {})).map(n => n.text)).toEqual(['hello']);
      expect((await em.findOne(Author, 1))?.name).toBe('main author');
      expect(em.getReference(Author, 1).name).toBe('main author');
      expect((await em.findOne(Note, 1))?.text).toBe('hello');
    } finally {
      await fleet.close();
    }
  });
});
