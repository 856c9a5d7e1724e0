/**
 * The photo albums of seed 001 ("Using multiple databases with single sqlalchemy model"): every album is a folder
 * with its own SQLite file, all with the same model, so albums can be moved, copied and deleted as folders. The
 * library stays open while albums are added, opened on first use, moved, copied and removed: "with a variable number
 * of databases ... you'll need some way to keep track of them" is the shard registry (docs/registry.md).
 *
 * Run: pnpm example albums
 */
import { mkdirSync, mkdtempDisposableSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM } from 'mikro-orm-sharding';

// The seed's model: pictures, tags, and the pic_tag table between them. Ids are each file's own autoincrement.
const PictureSchema = defineEntity({
  name: 'Picture',
  tableName: 'pic',
  properties: {
    id: p.integer().primary().fieldName('pic_id'),
    filename: p.string(),
    takenAt: p.datetime(),
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

const day = (d: number) => new Date(Date.UTC(2024, 6, d));
using library = mkdtempDisposableSync(join(tmpdir(), 'albums-'));
const folder = (...path: string[]) => join(library.path, ...path);

// The library holds no album yet; at most two album files are open at once.
await using orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Picture, Tag],
  shards: {},
  maxOpenShards: 2,
  // An album's tables are made (or brought up to date) when its file is first opened.
  onShardOpen: async ({ orm: album }) => {
    await album.schema.update();
  },
  // Nothing in a picture says which album it belongs to: the caller says it, through the album's entity manager.
  shardChooser: ({ entityName }) => {
    throw new Error(`a new ${entityName} needs an album: write it through orm.em.fork({ shard: album })`);
  },
});

/** Adds the album in a folder: a shard named after the folder, on the album.db inside it. Nothing is opened yet. */
async function addAlbum(name: string, path: string): Promise<void> {
  mkdirSync(path, { recursive: true });
  await orm.addShard(name, { dbName: join(path, 'album.db') });
}
const openNow = () => `open now: ${[...orm.shards.keys()].join(', ') || 'none'} (of ${orm.shardIds.length} albums)`;

await addAlbum('vacation', folder('vacation'));
await addAlbum('wedding', folder('wedding'));
console.log(`added vacation and wedding; ${openNow()}`);

// An entity manager pinned to one album is the seed's `DBSession[0]`: one album's session. Every new entity it
// makes is written to that album's file, and its queries read that file only.
const vacation = orm.em.fork({ shard: 'vacation' });
const sun = vacation.create(Tag, { label: 'sun' });
const sea = vacation.create(Tag, { label: 'sea' });
vacation.create(Picture, { filename: 'IMG_0001.jpg', takenAt: day(1), tags: [sun, sea] });
vacation.create(Picture, { filename: 'IMG_0002.jpg', takenAt: day(3), tags: [sea] });
vacation.create(Picture, { filename: 'IMG_0003.jpg', takenAt: day(5), tags: [sun] });
await vacation.flush();

const wedding = orm.em.fork({ shard: 'wedding' });
const family = wedding.create(Tag, { label: 'family' });
wedding.create(Picture, { filename: 'IMG_0001.jpg', takenAt: day(2), tags: [family] }); // same name, other album
wedding.create(Picture, { filename: 'IMG_0002.jpg', takenAt: day(4), tags: [family] });
await wedding.flush();

// One album: the seed's `DBSession[0].query(Picture).all()`.
const sunny = await orm.em.fork({ shard: 'vacation' }).find(Picture, { tags: { label: 'sun' } }, { orderBy: { takenAt: 'asc' } });
console.log(`vacation, tagged sun: ${sunny.map(pic => pic.filename).join(', ')}`);

// Every album at once, in one order across the files; each picture's tags come from its own file.
const all = orm.em.fork();
const timeline = await all.find(Picture, {}, { orderBy: { takenAt: 'asc' }, populate: ['tags'] });
console.log('all albums, by date:');
for (const pic of timeline) {
  console.log(`  ${pic.takenAt.toISOString().slice(0, 10)} ${all.shardOf(pic)}/${pic.filename} [${pic.tags.map(tag => tag.label).sort()}]`);
}

// A third album, while the library is open: using it opens its file, and the least recently used idle one closes.
await addAlbum('birthday', folder('birthday'));
const birthday = orm.em.fork({ shard: 'birthday' });
birthday.create(Picture, { filename: 'IMG_0100.jpg', takenAt: day(9) });
await birthday.flush();
console.log(`birthday written; ${openNow()}`);

// Albums are folders. Moving one: take it out of the library, move the folder, add it under its new path.
await orm.removeShard('vacation');
mkdirSync(folder('archive'));
renameSync(folder('vacation'), folder('archive', 'holiday-2024'));
await orm.addShard('holiday-2024', { dbName: folder('archive', 'holiday-2024', 'album.db') });
console.log(`holiday-2024 still has ${await orm.em.fork().count(Picture, {}, { shard: 'holiday-2024' })} pictures`);

// Copying one while it is open: SQLite's `vacuum into` writes a consistent copy; a lease keeps the album open meanwhile.
mkdirSync(folder('wedding-copy'));
{
  const lease = await orm.leaseShard('wedding');
  try {
    await lease.orm.em.getConnection().execute(`vacuum into '${folder('wedding-copy', 'album.db')}'`);
  } finally {
    lease.release();
  }
}
await orm.addShard('wedding-copy', { dbName: folder('wedding-copy', 'album.db') });

// The copy is a database of its own: changing it leaves the original alone.
const copy = orm.em.fork({ shard: 'wedding-copy' });
copy.remove(await copy.findOneOrFail(Picture, 1));
await copy.flush();

// Deleting one: out of the library, then the folder.
await orm.removeShard('birthday');
rmSync(folder('birthday'), { recursive: true });

const counts = [];
for (const album of orm.shardIds) counts.push(`${album}=${await orm.em.fork().count(Picture, {}, { shard: album })}`);
console.log(`albums: ${counts.join(' ')}`);
console.log(openNow());
