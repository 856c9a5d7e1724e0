// --registry: the runtime shard registry at scale (docs/registry.md). 10 000 SQLite files, one per album, registered
// with `orm.addShard()`, at most `--max-open` open; lookups by id through the sharded entity manager, each on an
// album picked at random. Cold: every lookup on an album not opened yet (it opens, and the least recently used idle
// album closes); hot: lookups within a working set of at most `--max-open` albums, all open.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, MikroORM, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import type { Args } from './args.ts';
import type { Progress } from './progress.ts';
import type { Result } from './run.ts';
import { markRss, peakRssMb, round, timePhase, type PhaseStats } from './stats.ts';
import { renderTable } from './table.ts';

const PhotoSchema = defineEntity({
  name: 'Photo',
  properties: { id: p.integer().primary().autoincrement(false), caption: p.string() },
});
class Photo extends PhotoSchema.class {}
PhotoSchema.setClass(Photo);

/** Photos in each album file. */
const PHOTOS = 20;

/** A deterministic PRNG (Park-Miller), so that runs with one seed pick the same albums. */
function prng(seed: number): (below: number) => number {
  let state = (seed % 2147483646) + 1;
  return below => {
    state = (state * 48271) % 2147483647;
    return state % below;
  };
}

/** `count` distinct numbers below `below`, in random order (a partial Fisher-Yates shuffle). */
function distinct(count: number, below: number, random: (below: number) => number): number[] {
  const all = Array.from({ length: below }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + random(below - i);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, count);
}

/** One album file with its table and photos: the template every album file is copied from. */
async function makeTemplate(file: string): Promise<void> {
  const orm = await MikroORM.init({ driver: SqliteDriver, dbName: file, entities: [Photo] });
  try {
    await orm.schema.create();
    const em = orm.em.fork();
    for (let id = 1; id <= PHOTOS; id++) em.create(Photo, { id, caption: `photo ${id}` });
    await em.flush();
  } finally {
    await orm.close();
  }
}

/** The registry run: one JSON line and a table. */
export async function registry(args: Args, progress: Progress, emit: (line: Result) => void): Promise<string> {
  const { registryShards: albums, maxOpen } = args;
  const dir = mkdtempSync(join(tmpdir(), 'bench-registry-'));
  const random = prng(args.seed);
  try {
    const template = join(dir, 'template.db');
    await makeTemplate(template);
    const file = (i: number) => join(dir, `album-${i}.db`);
    progress.start('copying album files', albums);
    let started = performance.now();
    for (let i = 0; i < albums; i++) {
      copyFileSync(template, file(i));
      progress.tick(i + 1);
    }
    const copySeconds = (performance.now() - started) / 1000;

    markRss();
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Photo],
      shards: {},
      maxOpenShards: maxOpen,
      // Every lookup names its album; nothing is written.
      shardChooser: () => {
        throw new Error('the registry run writes nothing');
      },
    });
    try {
      progress.start('registering albums', albums);
      started = performance.now();
      for (let i = 0; i < albums; i++) {
        await orm.addShard(`album-${i}`, { dbName: file(i) });
        progress.tick(i + 1);
      }
      const registerSeconds = (performance.now() - started) / 1000;
      let checked = 0;
      const lookup = async (album: number) => {
        const id = 1 + random(PHOTOS);
        const photo = await orm.em.fork().findOneOrFail(Photo, id, { shard: `album-${album}` });
        if (photo.caption === `photo ${id}`) checked++;
      };

      const coldAlbums = distinct(Math.min(args.points, albums), albums, random);
      progress.start('cold lookups', coldAlbums.length);
      const cold = await timePhase(coldAlbums.length, coldAlbums.length, i => lookup(coldAlbums[i]!), progress.tick);
      const openAfterCold = orm.shards.size;

      const working = distinct(Math.min(maxOpen, albums), albums, random);
      for (const album of working) await lookup(album); // opened, untimed
      progress.start('hot lookups', args.points);
      const hot = await timePhase(args.points, args.points, () => lookup(working[random(working.length)]!), progress.tick);
      const openAfterHot = orm.shards.size;
      progress.end();
      if (checked !== coldAlbums.length + working.length + args.points) {
        throw new Error(`registry run: ${checked} of ${coldAlbums.length + working.length + args.points} lookups found the photo they asked for`);
      }

      const line: Result = {
        mode: 'registry',
        driver: 'sqlite',
        shards: albums,
        max_open_shards: maxOpen,
        copy_files_s: round(copySeconds, 2),
        add_shard_us: round((registerSeconds * 1e6) / albums, 1),
        ...keys('cold', cold),
        // A cold lookup opens one album, queries it and closes the least recently used one: its wall time per lookup.
        open_query_close_ms: round((cold.seconds * 1000) / coldAlbums.length, 3),
        ...keys('hot', hot),
        open_after_cold: openAfterCold,
        open_after_hot: openAfterHot,
        peak_rss_mb: peakRssMb(),
      };
      emit(line);
      const table = renderTable(
        ['registry', 'lookups/s', 'p50 ms', 'p99 ms'],
        [
          [`cold (${coldAlbums.length} albums, each first touch)`, fmtRate(cold), fmtMs(cold.p50Ms), fmtMs(cold.p99Ms)],
          [`hot (working set of ${working.length})`, fmtRate(hot), fmtMs(hot.p50Ms), fmtMs(hot.p99Ms)],
        ],
      );
      return [
        table,
        `${albums} album files (copied in ${round(copySeconds, 1)} s), maxOpenShards ${maxOpen}; addShard ${line.add_shard_us} us each`,
        `open+query+close of a closed album: ${line.open_query_close_ms} ms (cold wall time per lookup); open after each phase: ${openAfterCold}, ${openAfterHot}`,
        `peak RSS ${line.peak_rss_mb} MB`,
      ].join('\n');
    } finally {
      await orm.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function keys(phase: string, stats: PhaseStats): Result {
  return { [`${phase}_lookups_per_s`]: round(stats.perSecond, 0), [`${phase}_p50_ms`]: round(stats.p50Ms, 3), [`${phase}_p99_ms`]: round(stats.p99Ms, 3) };
}

const fmtRate = (stats: PhaseStats) => String(round(stats.perSecond, 0));
const fmtMs = (ms: number) => ms.toFixed(3);
