/**
 * Table-suffix sharding (one database, a `photo_<md5>` table per album key), per driver: writes land in their
 * key's table (checked with raw SQL), reads by key touch one table, a query over every suffix answers as one plain
 * table holding every row does, a bad suffix is refused with nothing written, a flush writing several suffix tables
 * of one database commits as one, and each shard's schema generator leaves the other shards' tables alone.
 */
import { MikroORM } from '@mikro-orm/core';
import { Migration, Migrator } from '@mikro-orm/migrations';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { md5Suffix, sharedTablesShard, ShardedMikroORM, tableSuffix, tableSuffixShard, type ShardOptions } from 'mikro-orm-sharding';
import { Album, Framed, Photo } from './support/photos.ts';
import { refusal } from './support/refusal.ts';
import { adminQuery, type Topology } from './support/topology.ts';

const ALBUMS = ['paris-2019', 'alps', 'wedding', 'cats'];
const suffixes = ALBUMS.map(md5Suffix);

function photoRows(): { id: number; albumKey: string; title: string; takenOn: string; likes: number }[] {
  return Array.from({ length: 40 }, (_, i) => ({
    id: i + 1,
    albumKey: ALBUMS[i % ALBUMS.length]!,
    title: `photo ${String((i * 7) % 40).padStart(2, '0')}`,
    takenOn: `2024-0${(i % 9) + 1}-1${i % 10}`,
    likes: (i * 13) % 17,
  }));
}

export function describeTableSuffix(makeTopology: () => Topology): void {
  let topology: Topology;
  let database: ShardOptions;
  let orm: ShardedMikroORM;
  let plain: MikroORM;
  const sql: string[] = [];

  async function raw<T>(query: string): Promise<T[]> {
    return orm.shard('main').em.getConnection().execute<T[]>(query);
  }
  async function countIn(table: string): Promise<number> {
    const [row] = await raw<{ n: number | string }>(`select count(*) as n from ${table}`);
    return Number(row!.n);
  }
  async function tables(): Promise<string[]> {
    return (
      topology.name === 'sqlite'
        ? await raw<{ name: string }>(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`)
        : await raw<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = 'public' order by table_name`)
    ).map(row => row.name);
  }
  async function countAll(): Promise<number[]> {
    return Promise.all([...suffixes.map(suffix => countIn(`photo_${suffix}`)), countIn('album')]);
  }

  beforeAll(async () => {
    topology = makeTopology();
    database = topology.database('photos');
    if (topology.name === 'postgresql') {
      // One database for every shard: made before init(), which would otherwise race to make it from each shard.
      await adminQuery([`create database "${database.dbName}"`]);
    }
    orm = await ShardedMikroORM.init({
      ...topology.shared,
      shards: {
        main: sharedTablesShard(database, { entities: [Album] }),
        ...Object.fromEntries(suffixes.map(suffix => [suffix, tableSuffixShard(database, { entities: [Photo], suffix })])),
      },
      shardBy: { Photo: { key: 'albumKey', strategy: tableSuffix({ shards: suffixes }) } },
      binds: { Album: 'main' },
      debug: ['query'],
      logger: line => sql.push(line),
    });
    await orm.schema.create();
    plain = await MikroORM.init({ ...topology.shared, ...topology.database('plain'), entities: [Photo, Album] });
    await plain.schema.ensureDatabase();
    await plain.schema.create();
    const reference = plain.em.fork();
    photoRows().forEach(row => reference.create(Photo, row));
    await reference.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await plain?.close(true);
    await topology?.dispose();
  });

  it('creates one table per suffix and the shared table once, in one database', async () => {
    expect((await tables()).filter(name => name !== 'mikro_orm_migrations')).toEqual(['album', ...suffixes.map(suffix => `photo_${suffix}`)].sort());
    // update() on each shard sees only its own tables: nothing to drop, nothing to create.
    for (const id of orm.shardIds) {
      expect(await orm.shard(id).schema.getUpdateSchemaSQL()).toBe('');
    }
    await orm.schema.update();
    expect(await countAll()).toEqual([0, 0, 0, 0, 0]);
  });

  it('writes each photo to its album key table, in one flush, and the album to the shared table', async () => {
    const em = orm.em.fork();
    em.create(Album, { key: 'alps', title: 'The Alps' });
    photoRows().forEach(row => em.create(Photo, row));
    await em.flush();
    for (const [i, album] of ALBUMS.entries()) {
      const rows = await raw<{ album_key: string }>(`select distinct album_key from photo_${md5Suffix(album)}`);
      expect(rows.map(row => row.album_key)).toEqual([album]);
      expect(await countIn(`photo_${suffixes[i]}`)).toBe(10);
    }
    expect(await countIn('album')).toBe(1);
  });

  it('reads by key from one table only', async () => {
    sql.length = 0;
    const photos = await orm.em.fork().find(Photo, { albumKey: 'wedding' }, { orderBy: { id: 'asc' } });
    expect(photos.map(photo => photo.id)).toEqual(
      photoRows()
        .filter(row => row.albumKey === 'wedding')
        .map(row => row.id),
    );
    const selects = sql.filter(line => /select/i.test(line));
    expect(selects.length).toBe(1);
    expect(selects[0]).toContain(`photo_${md5Suffix('wedding')}`);
    const em = orm.em.fork();
    const loaded = await em.findOneOrFail(Photo, { albumKey: 'alps', id: 2 });
    expect(em.shardOf(loaded)).toBe(md5Suffix('alps'));
  });

  it('answers a query over every suffix as one plain table does', async () => {
    const reference = plain.em.fork();
    const em = orm.em.fork();
    const shapes = [
      [{ likes: { $gte: 5 } }, { orderBy: { likes: 'desc', id: 'asc' }, limit: 7, offset: 3 }],
      [{}, { orderBy: { title: 'asc', id: 'asc' } }],
      [{ albumKey: { $in: ['alps', 'cats'] } }, { orderBy: { takenOn: 'desc', id: 'desc' }, limit: 5 }],
    ] as const;
    for (const [where, options] of shapes) {
      const want = await reference.find(Photo, where, options as never);
      const got = await em.find(Photo, where, options as never);
      expect(got.map(photo => [photo.id, photo.albumKey, photo.likes])).toEqual(want.map(photo => [photo.id, photo.albumKey, photo.likes]));
      expect(await em.count(Photo, where)).toBe(await reference.count(Photo, where));
    }
  });

  it('updates and deletes in the right tables, several suffixes in one flush', async () => {
    const em = orm.em.fork();
    const photos = await em.find(Photo, { id: { $in: [1, 2, 3] } });
    photos.forEach(photo => (photo.likes += 100));
    em.remove(await em.findOneOrFail(Photo, { albumKey: 'cats', id: 4 }));
    await em.flush();
    const [one] = await raw<{ likes: number }>(`select likes from photo_${md5Suffix('paris-2019')} where id = 1`);
    expect(Number(one!.likes)).toBeGreaterThanOrEqual(100);
    expect(await countIn(`photo_${md5Suffix('cats')}`)).toBe(9);
    em.create(Photo, { id: 4, albumKey: 'cats', title: 'photo 21', takenOn: '2024-04-13', likes: 5 });
    photos.forEach(photo => (photo.likes -= 100));
    await em.flush();
    expect(await countIn(`photo_${md5Suffix('cats')}`)).toBe(10);
  });

  it('commits a flush over several suffix tables as one transaction: a failure writes none', async () => {
    const before = await countAll();
    const em = orm.em.fork();
    em.create(Photo, { id: 101, albumKey: 'alps', title: 'new', takenOn: '2025-01-01', likes: 0 });
    em.create(Photo, { id: 102, albumKey: 'cats', title: 'new', takenOn: '2025-01-01', likes: 0 });
    em.create(Photo, { id: 1, albumKey: 'paris-2019', title: 'duplicate id', takenOn: '2025-01-01', likes: 0 });
    await expect(em.flush()).rejects.toThrow();
    expect(await countAll()).toEqual(before);
  });

  it('lets several entity managers write several suffix tables of one database at once', async () => {
    const before = await countAll();
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const em = orm.em.fork();
        em.create(Photo, { id: 200 + i, albumKey: ALBUMS[i % 4]!, title: 'burst', takenOn: '2025-02-01', likes: i });
        em.create(Photo, { id: 300 + i, albumKey: ALBUMS[(i + 1) % 4]!, title: 'burst', takenOn: '2025-02-01', likes: i });
        await em.flush();
      }),
    );
    const after = await countAll();
    expect(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)).toBe(12);
    expect(await orm.em.fork().count(Photo, { title: 'burst' })).toBe(12);
    await orm.em.fork().nativeDelete(Photo, { title: 'burst' });
    expect(await countAll()).toEqual(before);
  });

  it('refuses a bad suffix before anything connects or is written', async () => {
    const before = await countAll();
    for (const bad of ['Photos', 'a-b', '', 'x; drop table album', 'ü']) {
      const error = await refusal(() => tableSuffixShard(database, { entities: [Photo], suffix: bad }));
      expect(error.code).toBe('INVALID_OPTIONS');
      expect(error.entity).toBe('Photo');
      expect(error.message).toContain('[a-z0-9_]');
    }
    const strategy = tableSuffix({ suffixOf: key => String(key) });
    const em = orm.em.fork();
    em.create(Album, { key: 'x', title: 'never written' });
    const bad = await refusal(async () => {
      const fleet = await ShardedMikroORM.init({
        ...topology.shared,
        shards: {
          main: sharedTablesShard(database, { entities: [Album] }),
          [suffixes[0]!]: tableSuffixShard(database, { entities: [Photo], suffix: suffixes[0]! }),
        },
        shardBy: { Photo: { key: 'albumKey', strategy } },
        binds: { Album: 'main' },
      });
      try {
        const writer = fleet.em.fork();
        writer.create(Album, { key: 'y', title: 'never written' });
        writer.create(Photo, { id: 900, albumKey: 'Bad Key', title: 'x', takenOn: 'x', likes: 0 });
        await writer.flush();
      } finally {
        await fleet.close(true);
      }
    });
    expect(bad.message).toContain('Bad Key');
    expect(await countAll()).toEqual(before);
  });

  it('refuses a relation that would bring a shared table onto a suffix shard', async () => {
    const error = await refusal(() =>
      ShardedMikroORM.init({
        ...topology.shared,
        shards: { [suffixes[0]!]: tableSuffixShard(database, { entities: [Framed], suffix: suffixes[0]! }) },
        shardBy: { Framed: { key: 'id', strategy: tableSuffix({ suffixOf: () => suffixes[0]! }) } },
      }),
    );
    expect(`${error.message} ${String((error.cause as Error | undefined)?.message)}`).toContain('Framed.album');
  });

  it('refuses orm.migrator on shards sharing the database, before any migration runs or is recorded', async () => {
    class Probe extends Migration {
      override name = 'Probe';
      override up(): void {
        this.addSql('create table probe (id integer primary key)');
      }
      override down(): void {
        this.addSql('drop table probe');
      }
    }
    const fleet = await ShardedMikroORM.init({
      ...topology.shared,
      extensions: [Migrator],
      migrations: { migrationsList: [{ name: 'Probe', class: Probe }], snapshot: false, silent: true },
      shards: {
        main: sharedTablesShard(database, { entities: [Album] }),
        ...Object.fromEntries(suffixes.map(suffix => [suffix, tableSuffixShard(database, { entities: [Photo], suffix })])),
      },
      shardBy: { Photo: { key: 'albumKey', strategy: tableSuffix({ shards: suffixes }) } },
      binds: { Album: 'main' },
    });
    try {
      const before = await tables();
      const runs: [string, () => Promise<unknown>][] = [
        ['orm.migrator.up()', () => fleet.migrator.up()],
        ['orm.migrator.up()', () => fleet.migrator.up({ shards: [suffixes[1]!] })],
        ['orm.migrator.down()', () => fleet.migrator.down({ shards: ['main'] })],
        ['orm.migrator.create()', () => fleet.migrator.create({ blank: true })],
        ['orm.migrator.pending()', () => fleet.migrator.pending()],
        ['orm.migrator.executed()', () => fleet.migrator.executed()],
        ['orm.migrator.status()', () => fleet.migrator.status()],
      ];
      for (const [operation, run] of runs) {
        const error = await refusal(run);
        expect(error.code).toBe('UNSUPPORTED_OPERATION');
        expect(error.message).toContain(operation);
        expect(error.message).toContain('orm.schema.update()');
        expect(error.message).toContain('mikro_orm_migrations');
      }
      // Nothing ran: no probe table, no migrations table, no row moved.
      expect(await tables()).toEqual(before);
      expect(before).not.toContain('probe');
    } finally {
      await fleet.close(true);
    }
  });

  it('adds a suffix at run time: orm.addShard(suffix, tableSuffixShard(...)) makes its table, and it is written and read like the others', async () => {
    const fleet = await ShardedMikroORM.init({
      ...topology.shared,
      // One suffix at init (shardBy needs a shard declaring Photo), the next one added.
      shards: {
        main: sharedTablesShard(database, { entities: [Album] }),
        [suffixes[0]!]: tableSuffixShard(database, { entities: [Photo], suffix: suffixes[0]! }),
      },
      // No `shards` list: any suffix is a shard id, registered when its first key comes.
      shardBy: { Photo: { key: 'albumKey', strategy: tableSuffix() } },
      binds: { Album: 'main' },
      onShardOpen: async ({ id, orm: shard }) => {
        if (id !== 'main') await shard.schema.update();
      },
    });
    const added = md5Suffix('added at run time');
    try {
      await fleet.addShard(added, tableSuffixShard(database, { entities: [Photo], suffix: added }));
      const before = await countAll();
      const em = fleet.em.fork();
      em.create(Photo, { id: 1001, albumKey: 'added at run time', title: 'new', takenOn: '2024-05-05', likes: 1 });
      em.create(Photo, { id: 1002, albumKey: 'added at run time', title: 'newer', takenOn: '2024-05-06', likes: 2 });
      await em.flush();
      expect(await countIn(`photo_${added}`)).toBe(2);
      expect(await countAll()).toEqual(before);
      const found = await fleet.em.fork().find(Photo, { albumKey: 'added at run time' }, { orderBy: { id: 'asc' } });
      expect(found.map(photo => photo.title)).toEqual(['new', 'newer']);
      // A key whose suffix is not registered is refused, nothing written.
      await expect(
        (async () => {
          const other = fleet.em.fork();
          other.create(Photo, { id: 1003, albumKey: 'never added', title: 'x', takenOn: '2024-05-07', likes: 0 });
          await other.flush();
        })(),
      ).rejects.toMatchObject({ code: 'UNKNOWN_SHARD' });
      expect(await countIn(`photo_${added}`)).toBe(2);
      // Removed, its table stays in the database.
      await fleet.removeShard(added);
      expect(await countIn(`photo_${added}`)).toBe(2);
    } finally {
      await fleet.close(true);
    }
  });
}
