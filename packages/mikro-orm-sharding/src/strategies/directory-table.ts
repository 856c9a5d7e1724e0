import { defineEntity, p } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

export const ShardDirectoryEntrySchema = defineEntity({
  name: 'ShardDirectoryEntry',
  tableName: 'shard_directory',
  properties: {
    /** Which directory the entry belongs to: a `directory()` strategy's `name`, or `buckets:<name>` for a hash's buckets. */
    directory: p.string().length(100).primary(),
    /** The key's canonical text (see `canonicalKey`), or a bucket number. */
    key: p.string().length(255).primary(),
    /** The shard that holds the key's rows. */
    shard: p.string().length(100),
  },
});

/**
 * One entry of a directory kept in a table (`shard_directory`): a key, or a hash bucket, and the shard that holds its
 * rows. Add it to the `entities` of the shard that keeps the directory (its own `entities`, or the shared ones), so
 * that `orm.schema.create()` and migrations make the table there.
 */
export class ShardDirectoryEntry extends ShardDirectoryEntrySchema.class {}
ShardDirectoryEntrySchema.setClass(ShardDirectoryEntry);

/** Refuses a directory shard that is not in the fleet or does not declare the entry entity, at `init()`. */
export function checkDirectoryShard(orm: ShardedMikroORM, shard: ShardId, owner: string): void {
  if (!orm.fleet.has(shard)) {
    throw ShardingError.invalidOptions(`${owner} keeps its directory on shard ${describe(shard)}, which is not one of the fleet's shards.`, shard);
  }
  if (!shardsKnowing(orm, ShardDirectoryEntry).has(shard)) {
    throw ShardingError.invalidOptions(
      `${owner} keeps its directory on shard ${describe(shard)}, whose \`entities\` do not include ShardDirectoryEntry: add it (import { ShardDirectoryEntry } from 'mikro-orm-sharding').`,
      shard,
    );
  }
}

/** A fork of the directory's shard of its own: directory reads and writes commit on their own, outside any unit of work. */
function forkOf(orm: ShardedMikroORM, shard: ShardId): SqlEntityManager {
  return orm.shard(shard).em.fork({ disableContextResolution: true }) as SqlEntityManager;
}

/** The shard an entry names, or undefined when the directory has no entry for the key. */
export async function readEntry(orm: ShardedMikroORM, shard: ShardId, directory: string, key: string): Promise<ShardId | undefined> {
  const entry = await forkOf(orm, shard).findOne(ShardDirectoryEntry, { directory, key });
  return entry?.shard;
}

/** Every entry of a directory, key -> shard. */
export async function readEntries(orm: ShardedMikroORM, shard: ShardId, directory: string): Promise<Map<string, ShardId>> {
  const entries = await forkOf(orm, shard).find(ShardDirectoryEntry, { directory });
  return new Map(entries.map(entry => [entry.key, entry.shard]));
}

/**
 * Adds entries for keys that have none; an entry another process wrote first is kept (a key never silently changes
 * shard), so read the entries again afterwards to learn who won.
 */
export async function insertMissing(orm: ShardedMikroORM, shard: ShardId, directory: string, entries: ReadonlyMap<string, ShardId>): Promise<void> {
  const rows = [...entries].map(([key, target]) => ({ directory, key, shard: target }));
  const fork = forkOf(orm, shard);
  // Chunks keep each statement's parameter count well under SQLite's and PostgreSQL's limits.
  for (let i = 0; i < rows.length; i += 200) {
    await fork
      .createQueryBuilder(ShardDirectoryEntry)
      .insert(rows.slice(i, i + 200))
      .onConflict(['directory', 'key'])
      .ignore()
      .execute();
  }
}

/** Points existing entries at another shard; returns how many were changed. */
export async function updateEntries(orm: ShardedMikroORM, shard: ShardId, directory: string, keys: readonly string[], target: ShardId): Promise<number> {
  return forkOf(orm, shard).nativeUpdate(ShardDirectoryEntry, { directory, key: { $in: [...keys] } }, { shard: target });
}
