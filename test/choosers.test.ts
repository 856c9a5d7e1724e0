import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, type QueryChooserArgs } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';
import { rowsPerShard } from './support/fleet.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

/** A directory held elsewhere: choosers that must look shards up asynchronously. */
type Shard = 'a' | 'b' | 'c';
const directory = new Map<number, Shard>();
const lookup = (id: number) => new Promise<Shard>(resolve => setTimeout(() => resolve(directory.get(id) ?? 'a'), 1));

let topology: Topology;
let orm: ShardedMikroORM;
const queried: QueryChooserArgs[] = [];

beforeAll(async () => {
  topology = sqliteTopology();
  orm = await ShardedMikroORM.init({
    ...topology.shared,
    entities,
    shards: { a: topology.database('a'), b: topology.database('b'), c: topology.database('c') },
    shardChooser: ({ entity }) => lookup((entity as Author).id),
    // 'nope' is not a shard: typed shard ids refuse it at compile time, so it stands for a computed id here.
    idChooser: async ({ id }) => (Number(id) < 0 ? ['nope' as Shard] : [await lookup(Number(id))]),
    queryChooser: args => {
      queried.push(args);
      const where = args.where as { name?: string };
      if (where.name === 'nobody') return [];
      return where.name === 'only-b' ? ['b', 'b'] : ['c', 'b', 'a'];
    },
  });
  await orm.schema.refresh();
});

afterAll(async () => {
  await orm?.close();
  await topology?.dispose();
});

describe('choosers', () => {
  it('may answer with promises (a directory lookup) for writes and primary-key reads', async () => {
    directory.set(1, 'c').set(2, 'b');
    const em = orm.em.fork();
    em.create(Author, { id: 1, name: 'one' });
    const two = new Author();
    two.id = 2;
    two.name = 'only-b';
    em.persist(two);
    await em.flush();
    expect(await rowsPerShard(orm, 'author')).toEqual({ a: 0, b: 1, c: 1 });
    const fresh = orm.em.fork();
    expect(fresh.shardOf(await fresh.findOneOrFail(Author, 1))).toBe('c');
  });

  it('asks the shard chooser once per new entity; later flushes keep the remembered shard', async () => {
    const em = orm.em.fork();
    const author = em.create(Author, { id: 3, name: 'moves?' });
    directory.set(3, 'b');
    await em.flush();
    directory.set(3, 'c');
    author.name = 'stays';
    await em.flush();
    expect(em.shardOf(author)).toBe('b');
    expect(await rowsPerShard(orm, 'author')).toEqual({ a: 0, b: 2, c: 1 });
  });

  it('gives the query chooser the condition and options, and reads only the shards it names (duplicates once)', async () => {
    queried.length = 0;
    const found = await orm.em.fork().find(Author, { name: 'only-b' }, { orderBy: { id: 'asc' }, limit: 5 });
    expect(found.map(a => a.id)).toEqual([2]);
    expect(queried).toHaveLength(1);
    expect(queried[0]).toMatchObject({ entityName: 'Author', where: { name: 'only-b' }, options: { orderBy: { id: 'asc' }, limit: 5 } });
  });

  it('without orderBy, concatenates in the query chooser’s order', async () => {
    const found = await orm.em.fork().find(Author, {});
    expect(found.map(a => orm.em.shardOf(a))).toEqual(['c', 'b', 'b']);
  });

  it('refuses an empty query chooser answer and an unknown id candidate', async () => {
    await expect(orm.em.fork().find(Author, { name: 'nobody' })).rejects.toMatchObject({ code: 'CHOOSER_RETURNED_NOTHING', entity: 'Author' });
    await expect(orm.em.fork().findOne(Author, -1)).rejects.toMatchObject({ code: 'UNKNOWN_SHARD', value: 'nope' });
  });

  it('reports a rejected chooser promise as CHOOSER_FAILED and writes nothing', async () => {
    const failing = await ShardedMikroORM.init({
      ...topology.shared,
      entities,
      shards: { a: topology.database('a'), b: topology.database('b'), c: topology.database('c') },
      shardChooser: async () => {
        throw new Error('directory timeout');
      },
    });
    try {
      const before = await rowsPerShard(orm, 'author');
      const em = failing.em.fork();
      em.create(Author, { id: 10, name: 'x' });
      await expect(em.flush()).rejects.toMatchObject({ code: 'CHOOSER_FAILED', cause: expect.objectContaining({ message: 'directory timeout' }) });
      expect(await rowsPerShard(orm, 'author')).toEqual(before);
    } finally {
      await failing.close();
    }
  });
});
