import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM } from 'mikro-orm-sharding';

// The photo-album case of seeds/001: one SQLite file per album, thousands of albums, a few open at once.

const PhotoSchema = defineEntity({
  name: 'Photo',
  properties: { id: p.integer().primary(), album: p.string(), caption: p.string() },
});
class Photo extends PhotoSchema.class {}
PhotoSchema.setClass(Photo);

const ALBUMS = 10_000;
const MAX_OPEN = 64;
const dir = mkdtempSync(join(tmpdir(), 'mikro-shard-albums-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const albumFile = (folder: string, i: number) => join(dir, folder, `album-${i}.db`);

describe('10 000 album files, at most 64 open', () => {
  it('uses random albums through one model, and finds a moved album under its new path', async () => {
    mkdirSync(join(dir, 'library'));
    let peak = 0;
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Photo],
      shards: {},
      maxOpenShards: MAX_OPEN,
      // An album file is made (and its table) when the album is first used.
      onShardOpen: async ({ orm: album }) => {
        await album.schema.update();
      },
      shardChooser: ({ entity }) => (entity as Photo).album,
    });
    for (let i = 0; i < ALBUMS; i++) {
      await orm.addShard(`album-${i}`, { dbName: albumFile('library', i) });
    }
    expect(orm.shardIds).toHaveLength(ALBUMS);
    expect(orm.shards.size).toBe(0);

    // A fixed pseudo-random walk over the albums: writes, then reads back.
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) % ALBUMS;
    const used = new Map<number, number>();
    for (let step = 0; step < 200; step++) {
      const i = random();
      const em = orm.em.fork();
      em.create(Photo, { id: step, album: `album-${i}`, caption: `photo ${step}` });
      await em.flush();
      used.set(i, (used.get(i) ?? 0) + 1);
      peak = Math.max(peak, orm.shards.size);
    }
    for (const [i, count] of used) {
      expect(await orm.em.fork().count(Photo, {}, { shard: `album-${i}` } as never)).toBe(count);
      peak = Math.max(peak, orm.shards.size);
    }
    expect(peak).toBeLessThanOrEqual(MAX_OPEN);
    expect(peak).toBe(MAX_OPEN);

    // Move one album's folder on disk and register it again under its new path and id.
    const [moved, photos] = [...used][0]!;
    await orm.removeShard(`album-${moved}`);
    mkdirSync(join(dir, 'moved'));
    renameSync(albumFile('library', moved), albumFile('moved', moved));
    await orm.addShard(`moved-${moved}`, { dbName: albumFile('moved', moved) });
    const rows = await orm.em.fork().find(Photo, {}, { shard: `moved-${moved}` } as never);
    expect(rows).toHaveLength(photos);
    expect(rows.every(photo => photo.album === `album-${moved}`)).toBe(true);
    expect(orm.shardIds).toHaveLength(ALBUMS);
    await orm.close();
  });
});
