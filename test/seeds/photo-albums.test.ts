/**
 * Seed 001, "Using multiple databases with single sqlalchemy model":
 * > "I have a photo album software (python) and the different albums are stored in different folders. In each folder
 * > is a separate sqlite database with additional information about the photos. I don't want to use a single global
 * > database because with this way I can simply move, delete and copy albums on a folder base. [...] Now I want to
 * > open multiple albums (and db connections) the same time. Every album has the same database model so my hope is
 * > that I can reuse it."
 *
 * One SQLite file per album folder, one shared model (Picture, Tag, pic_tag), shard id = album name.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, ShardingError, type ShardedEntityManager, type ShardId } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawCount, rawQuery } from './raw.ts';

const PictureSchema = defineEntity({
  name: 'Picture',
  tableName: 'pic',
  properties: {
    id: p.integer().primary().fieldName('pic_id'),
    filename: p.string(),
    takenAt: p.integer(),
    /** Not stored: only tells the shard chooser which album a new picture is for. */
    album: p.string().persist(false).nullable(),
    tags: () => p.manyToMany(Tag).owner().pivotTable('pic_tag').joinColumn('pic_id').inverseJoinColumn('tag_id'),
  },
});
class Picture extends PictureSchema.class {}
PictureSchema.setClass(Picture);

const TagSchema = defineEntity({
  name: 'Tag',
  tableName: 'tag',
  properties: {
    id: p.integer().primary().fieldName('tag_id'),
    label: p.string(),
    pictures: () => p.manyToMany(Picture).mappedBy('tags'),
  },
});
class Tag extends TagSchema.class {}
TagSchema.setClass(Tag);

interface Photo {
  readonly album: string;
  readonly filename: string;
  readonly takenAt: number;
  readonly tags: readonly string[];
}

const LABELS = ['sun', 'family', 'cat', 'night'];
const SIZES: Record<string, number> = { vacation: 5, wedding: 4, pets: 6 };

/** The photos of every album; takenAt is a permutation of 1..15 so a global order interleaves the albums. */
function photos(): Photo[] {
  const list: Photo[] = [];
  let k = 0;
  for (const [album, size] of Object.entries(SIZES)) {
    for (let i = 0; i < size; i++) {
      k++;
      // Same file names in every album (cameras restart their numbering): only (album, filename) is unique.
      const tags = LABELS.filter((_, j) => (i + j) % 3 === 0);
      list.push({ album, filename: `IMG_${String(i + 1).padStart(4, '0')}.jpg`, takenAt: (k * 7) % 16, tags });
    }
  }
  return list;
}

const byTaken = (a: Photo, b: Photo) => a.takenAt - b.takenAt;
const distinctLabels = (album: string) =>
  new Set(
    photos()
      .filter(ph => ph.album === album)
      .flatMap(ph => ph.tags),
  ).size;
const pivotRows = (album: string) =>
  photos()
    .filter(ph => ph.album === album)
    .reduce((n, ph) => n + ph.tags.length, 0);

function summary(em: ShardedEntityManager, pictures: readonly Picture[]): Photo[] {
  return pictures.map(pic => ({
    album: em.shardOf(pic)!,
    filename: pic.filename,
    takenAt: pic.takenAt,
    tags: pic.tags.isInitialized()
      ? pic.tags
          .getItems()
          .map(tag => tag.label)
          .sort((a, b) => LABELS.indexOf(a) - LABELS.indexOf(b))
      : [],
  }));
}

function openAlbums(paths: Record<ShardId, string>): Promise<ShardedMikroORM> {
  return ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Picture, Tag],
    shards: Object.fromEntries(Object.entries(paths).map(([album, folder]) => [album, { dbName: join(folder, 'album.db') }])),
    // A new picture says which album it is for; a new tag goes to the album of its first picture.
    shardChooser: ({ entity }) => {
      const picture = entity instanceof Tag ? entity.pictures.getItems()[0] : (entity as Picture);
      if (!picture?.album) {
        throw new Error('a new picture needs an album (or create it with { shard })');
      }
      return picture.album;
    },
  });
}

describe('photo albums: one SQLite file per album folder (seed 001)', () => {
  const root = mkdtempSync(join(tmpdir(), 'mos-seed-albums-'));
  const folder = (name: string) => join(root, name);
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    for (const album of Object.keys(SIZES)) {
      mkdirSync(folder(album), { recursive: true });
    }
    orm = await openAlbums(Object.fromEntries(Object.keys(SIZES).map(album => [album, folder(album)])));
    await orm.schema.create();

    const em = orm.em.fork();
    for (const album of Object.keys(SIZES)) {
      const mine = photos().filter(ph => ph.album === album);
      // `vacation` and `wedding` are written with an explicit { shard }; `pets` through the shard chooser.
      const explicit = album === 'pets' ? {} : { shard: album };
      const tags = new Map<string, Tag>();
      for (const photo of mine) {
        for (const label of photo.tags) {
          if (!tags.has(label)) {
            tags.set(label, em.create(Tag, { label }, explicit));
          }
        }
        const picture = em.create(Picture, { filename: photo.filename, takenAt: photo.takenAt, album: explicit.shard ? null : album }, explicit);
        photo.tags.forEach(label => picture.tags.add(tags.get(label)!));
      }
    }
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    rmSync(root, { recursive: true, force: true });
  });

  it('writes each album into its own folder’s file only (pic, tag and pic_tag counted on every album)', async () => {
    for (const album of Object.keys(SIZES)) {
      expect(existsSync(join(folder(album), 'album.db'))).toBe(true);
      expect(await rawCount(orm, album, '"pic"')).toBe(SIZES[album]);
      expect(await rawCount(orm, album, '"tag"')).toBe(distinctLabels(album));
      expect(await rawCount(orm, album, '"pic_tag"')).toBe(pivotRows(album));
      // Every pivot row joins a picture and a tag of the same file.
      const [joined] = await rawQuery(
        orm,
        album,
        'select count(*) as c from "pic_tag" pt join "pic" p on p.pic_id = pt.pic_id join "tag" t on t.tag_id = pt.tag_id',
      );
      expect(Number(joined!.c)).toBe(pivotRows(album));
    }
    // Same model in every file: the ids restart at 1 in each album.
    for (const album of Object.keys(SIZES)) {
      const ids = (await rawQuery(orm, album, 'select pic_id from "pic" order by pic_id')).map(row => Number(row.pic_id));
      expect(ids).toEqual(Array.from({ length: SIZES[album]! }, (_, i) => i + 1));
    }
  });

  it('refuses a new picture that names no album, writing nothing anywhere', async () => {
    const before = Object.fromEntries(await Promise.all(orm.shardIds.map(async album => [album, await rawCount(orm, album, '"pic"')] as const)));
    const em = orm.em.fork();
    em.create(Picture, { filename: 'orphan.jpg', takenAt: 99, album: null });
    const error = await em.flush().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShardingError);
    expect((error as ShardingError).code).toBe('CHOOSER_FAILED');
    for (const album of orm.shardIds) {
      expect(await rawCount(orm, album, '"pic"')).toBe(before[album]);
    }
  });

  it('queries one album only, with { shard } and with em.on(album)', async () => {
    for (const album of Object.keys(SIZES)) {
      const expected = photos()
        .filter(ph => ph.album === album)
        .sort(byTaken);
      const em = orm.em.fork();
      const pictures = await em.find(Picture, {}, { shard: album, orderBy: { takenAt: 'asc' }, populate: ['tags'] });
      expect(summary(em, pictures)).toEqual(expected);
      expect(await em.count(Picture, {}, { shard: album })).toBe(expected.length);

      // em.on(album) is plain MikroORM on that album's file.
      const plain = await em.on(album).find(Picture, {}, { orderBy: { takenAt: 'asc' } });
      expect(plain.map(pic => pic.filename)).toEqual(expected.map(ph => ph.filename));
      expect(plain.every(pic => em.shardOf(pic) === album)).toBe(true);
    }
  });

  it('queries all albums at once: fan-out merged in the global order, paged and counted', async () => {
    const em = orm.em.fork();
    const all = await em.find(Picture, {}, { orderBy: { takenAt: 'desc' }, populate: ['tags'] });
    expect(summary(em, all)).toEqual([...photos()].sort(byTaken).reverse());
    // Tag ids collide across albums (each file starts at 1), yet every album's tags are its own objects.
    const tagObjects = new Set(all.flatMap(pic => pic.tags.getItems()));
    expect(tagObjects.size).toBe(Object.keys(SIZES).reduce((n, album) => n + distinctLabels(album), 0));

    const page = await orm.em.fork().find(Picture, {}, { orderBy: { takenAt: 'asc' }, limit: 4, offset: 5 });
    expect(page.map(pic => pic.takenAt)).toEqual(
      [...photos()]
        .sort(byTaken)
        .slice(5, 9)
        .map(ph => ph.takenAt),
    );
    expect(await orm.em.fork().count(Picture)).toBe(photos().length);

    const sunny = await orm.em.fork().find(Picture, { tags: { label: 'sun' } }, { orderBy: { takenAt: 'asc' } });
    expect(sunny.map(pic => pic.takenAt)).toEqual(
      photos()
        .filter(ph => ph.tags.includes('sun'))
        .sort(byTaken)
        .map(ph => ph.takenAt),
    );
  });

  it('survives moving one album folder and copying another: re-opened, data intact, the copy independent', async () => {
    await orm.close();
    const moved = join(root, 'archive', '2024', 'holiday');
    mkdirSync(join(root, 'archive', '2024'), { recursive: true });
    renameSync(folder('vacation'), moved);
    cpSync(folder('wedding'), folder('wedding-copy'), { recursive: true });
    expect(existsSync(folder('vacation'))).toBe(false);

    orm = await openAlbums({ holiday: moved, wedding: folder('wedding'), 'wedding-copy': folder('wedding-copy'), pets: folder('pets') });
    const renamed = (album: string) => (album === 'vacation' ? 'holiday' : album);
    const expected = [
      ...photos(),
      ...photos()
        .filter(ph => ph.album === 'wedding')
        .map(ph => ({ ...ph, album: 'wedding-copy' })),
    ]
      .map(ph => ({ ...ph, album: renamed(ph.album) }))
      .sort(byTaken);

    const em = orm.em.fork();
    const all = await em.find(Picture, {}, { orderBy: { takenAt: 'asc', id: 'asc' }, populate: ['tags'] });
    // Equal takenAt within the original and the copy: compare as sets of rows per position group.
    const key = (ph: Photo) => `${ph.takenAt}|${ph.album}|${ph.filename}|${ph.tags.join(',')}`;
    expect(summary(em, all).map(key).sort()).toEqual(expected.map(key).sort());
    expect(summary(em, all).map(ph => ph.takenAt)).toEqual(expected.map(ph => ph.takenAt));

    // Change the copy only: one picture re-tagged, one removed, one added.
    const copy = orm.em.fork();
    const [first, second] = await copy.find(Picture, {}, { shard: 'wedding-copy', orderBy: { id: 'asc' }, populate: ['tags'] });
    const firstTags = first!.tags.length;
    const secondTags = second!.tags.length;
    expect(firstTags + secondTags).toBeGreaterThan(0);
    first!.tags.removeAll();
    copy.remove(second!);
    copy.create(Picture, { filename: 'IMG_9999.jpg', takenAt: 100 }, { shard: 'wedding-copy' });
    await copy.flush();

    const weddingSize = SIZES.wedding!;
    expect(await rawCount(orm, 'wedding', '"pic"')).toBe(weddingSize);
    expect(await rawCount(orm, 'wedding', '"pic_tag"')).toBe(pivotRows('wedding'));
    expect(await rawCount(orm, 'wedding', '"pic"', `filename = 'IMG_9999.jpg'`)).toBe(0);
    expect(await rawCount(orm, 'wedding-copy', '"pic"')).toBe(weddingSize);
    expect(await rawCount(orm, 'wedding-copy', '"pic"', `filename = 'IMG_9999.jpg'`)).toBe(1);
    expect(await rawCount(orm, 'wedding-copy', '"pic"', `pic_id = ${second!.id}`)).toBe(0);
    expect(await rawCount(orm, 'wedding', '"pic"', `pic_id = ${second!.id}`)).toBe(1);
    expect(await rawCount(orm, 'wedding-copy', '"pic_tag"')).toBe(pivotRows('wedding') - firstTags - secondTags);
    // The moved album and the untouched one are as they were.
    expect(await rawCount(orm, 'holiday', '"pic"')).toBe(SIZES.vacation);
    expect(await rawCount(orm, 'holiday', '"pic_tag"')).toBe(pivotRows('vacation'));
    expect(await rawCount(orm, 'pets', '"pic"')).toBe(SIZES.pets);
  });
});
