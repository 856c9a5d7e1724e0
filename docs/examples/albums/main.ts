/**
 * The photo albums of seed 001 ("Using multiple databases with single sqlalchemy model"): every album is a folder
 * with its own SQLite file, all with the same model, so albums can be moved, copied and deleted as folders. Several
 * albums are open at once; each can be queried on its own, or all of them together.
 *
 * The fleet's databases are fixed when it is opened, so this example re-opens the library after albums are moved or
 * copied (see README.md: adding and removing albums while it is open needs the runtime shard registry).
 *
 * Run: pnpm example albums
 */
import { cpSync, existsSync, mkdirSync, mkdtempDisposableSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
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

/** Opens albums, given their folders: one shard per album, named after its folder, on the album.db inside it. */
function openAlbums(folders: readonly string[]) {
  return ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Picture, Tag],
    shards: Object.fromEntries(folders.map(folder => [basename(folder), { dbName: join(folder, 'album.db') }])),
    // Nothing in a picture says which album it belongs to: the caller says it, through the album's entity manager.
    shardChooser: ({ entityName }) => {
      throw new Error(`a new ${entityName} needs an album: write it through orm.em.fork({ shard: album })`);
    },
  });
}

/** The album folders in `folder`: those holding an album.db. */
const albumsIn = (folder: string) =>
  readdirSync(folder)
    .map(name => join(folder, name))
    .filter(path => existsSync(join(path, 'album.db')))
    .sort();

const day = (d: number) => new Date(Date.UTC(2024, 6, d));
using library = mkdtempDisposableSync(join(tmpdir(), 'albums-'));

// Two new albums: their folders, their files, their tables.
const folders = ['vacation', 'wedding'].map(album => join(library.path, album));
for (const folder of folders) mkdirSync(folder);
{
  await using orm = await openAlbums(folders);
  await orm.schema.create();

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

  // Every open album at once, in one order across the files; each picture's tags come from its own file.
  const all = orm.em.fork();
  const timeline = await all.find(Picture, {}, { orderBy: { takenAt: 'asc' }, populate: ['tags'] });
  console.log('all albums, by date:');
  for (const pic of timeline) {
    console.log(`  ${pic.takenAt.toISOString().slice(0, 10)} ${all.shardOf(pic)}/${pic.filename} [${pic.tags.map(tag => tag.label).sort()}]`);
  }
}

// Albums are folders: move one, copy another, while no fleet has them open.
mkdirSync(join(library.path, 'archive'));
renameSync(join(library.path, 'vacation'), join(library.path, 'archive', 'holiday-2024'));
cpSync(join(library.path, 'wedding'), join(library.path, 'wedding-copy'), { recursive: true });

{
  // Re-open: the albums are found where they are now, the moved one under archive/.
  await using orm = await openAlbums([...albumsIn(library.path), ...albumsIn(join(library.path, 'archive'))]);
  console.log(`albums: ${orm.shardIds.join(', ')}`);
  console.log(`holiday-2024 still has ${await orm.em.fork().count(Picture, {}, { shard: 'holiday-2024' })} pictures`);

  // The copy is a database of its own: changing it leaves the original alone.
  const copy = orm.em.fork({ shard: 'wedding-copy' });
  const first = await copy.findOneOrFail(Picture, 1);
  copy.remove(first);
  await copy.flush();
  const counts = await Promise.all(orm.shardIds.map(async album => `${album}=${await orm.em.fork().count(Picture, {}, { shard: album })}`));
  console.log(`after removing a picture from the copy: ${counts.join(' ')}`);
}
