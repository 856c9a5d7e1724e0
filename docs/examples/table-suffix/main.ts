/**
 * Seed 001, "Dynamically setting __tablename__ for sharding": one database, one table per key, `table_<md5>`, all
 * with the same columns. Each table is a shard: a MikroORM over the same SQLite file whose metadata names the table.
 *
 * Run: pnpm example table-suffix
 */
import { mkdtempDisposableSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { md5Suffix, sharedTablesShard, ShardedMikroORM, tableSuffix, tableSuffixShard } from 'mikro-orm-sharding';

// The seed's model: `table_<md5>` with two date columns, plus the key whose md5 names the table.
const RecordSchema = defineEntity({
  name: 'Record',
  tableName: 'table',
  properties: {
    id: p.integer().primary().autoincrement(false),
    source: p.string(),
    column1: p.string(),
    column2: p.string(),
  },
});
class Record extends RecordSchema.class {}
RecordSchema.setClass(Record);

// A table every key shares, in the same database.
const SourceSchema = defineEntity({ name: 'Source', properties: { name: p.string().primary(), owner: p.string() } });
class Source extends SourceSchema.class {}
SourceSchema.setClass(Source);

const sources = ['one', 'two', 'three'];
const suffixes = sources.map(md5Suffix); // the seed's md5hash of each key

using folder = mkdtempDisposableSync(join(tmpdir(), 'table-suffix-')); // removed when the script ends
const database = { dbName: join(folder.path, 'records.db') };
await using orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  shards: {
    main: sharedTablesShard(database, { entities: [Source] }),
    // The seed's get_table_object(md5hash), once per suffix, without clear_mappers(): each suffix has its own metadata.
    ...Object.fromEntries(suffixes.map(suffix => [suffix, tableSuffixShard(database, { entities: [Record], suffix })])),
  },
  shardBy: { Record: { key: 'source', strategy: tableSuffix({ shards: suffixes }) } },
  binds: { Source: 'main' },
});
await orm.schema.create(); // each shard creates its own table only

const em = orm.em.fork();
sources.forEach(name => em.create(Source, { name, owner: `team ${name}` }));
for (let id = 1; id <= 9; id++) {
  em.create(Record, { id, source: sources[id % 3]!, column1: `2024-01-0${id}`, column2: `2024-02-0${id}` });
}
await em.flush(); // one transaction over every table of the file

const raw = orm.shard('main').em.getConnection();
const tables = await raw.execute<{ name: string }[]>(`select name from sqlite_master where type = 'table' order by name`);
console.log('tables:', tables.map((table: { name: string }) => table.name.replace(/^(table_.{6}).*$/, '$1…')).join(', '));
for (const source of sources) {
  const [row] = await raw.execute<{ n: number }[]>(`select count(*) as n from table_${md5Suffix(source)}`);
  console.log(`table_${md5Suffix(source).slice(0, 6)}… (${source}): ${row!.n} rows`);
}

const reader = orm.em.fork();
const two = await reader.find(Record, { source: 'two' }, { orderBy: { id: 'asc' } }); // one table
console.log('source two:', two.map(record => record.id).join(', '));
const late = await reader.find(Record, { column1: { $gte: '2024-01-06' } }, { orderBy: { column1: 'desc' } }); // every table, merged
console.log('from 2024-01-06, newest first:', late.map(record => `${record.id}@${record.source}`).join(', '));
console.log('records:', await reader.count(Record));
