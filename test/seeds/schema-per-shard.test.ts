/**
 * Seed 001, "Dynamically setting __tablename__ for sharding in SQLAlchemy?":
 * > "In order to handle a growing database table, we are sharding on table name. So we could have database tables
 * > that are named like this: table_md5one, table_md5two, table_md5three. All tables have the exact same schema."
 *
 * The same idea with PostgreSQL schemas: one database, one entity, and each shard is a schema of that database
 * (MikroORM's `schema` option per shard), so the table `measurement` exists once per shard.
 *
 * MikroORM's `schema` option itself behaves per shard (schema.create, `{ shard }` writes and reads, id lookups all
 * use the shard's schema). Two tests here fail against the library as of this writing: new entities placed by the
 * shard chooser are written into the FIRST shard's schema (they are created on a staging fork of that shard, and
 * MikroORM stamps the creating fork's schema on the entity), and a row-merged fan-out runs the SQL compiled for
 * one shard (schema-qualified) on every shard of the same driver.
 */
import { defineEntity, p } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ShardedMikroORM, type ShardId } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL } from '../support/topology.ts';
import { adminExecute, rawQuery, uniqueName } from './raw.ts';

const MeasurementSchema = defineEntity({
  name: 'Measurement',
  properties: {
    id: p.integer().primary().autoincrement(false),
    sensor: p.string(),
    reading: p.integer(),
  },
});
class Measurement extends MeasurementSchema.class {}
MeasurementSchema.setClass(Measurement);

const SHARDS = ['shard_a', 'shard_b', 'shard_c'];
/** Uneven on purpose (5, 10 and 15 rows), so a sum of the wrong schema's counts cannot pass for the right one. */
const shardOfId = (id: number): ShardId => SHARDS[[0, 1, 1, 2, 2, 2][id % 6]!]!;

interface Row {
  readonly id: number;
  readonly sensor: string;
  readonly reading: number;
}
/** 30 readings; readings interleave the shards and have ties, broken by id. */
const ROWS: Row[] = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, sensor: `sensor-${(i * 7) % 5}`, reading: (i * 37) % 23 }));
const rowsOf = (shard: ShardId) => ROWS.filter(row => shardOfId(row.id) === shard);

describe('one PostgreSQL database, one schema per shard (seed 001, dynamic table names)', () => {
  const dbName = uniqueName('schemas');
  let orm: ShardedMikroORM;
  let created = false;

  /** Counts a schema's rows with schema-qualified SQL, on a shard's own connection (any shard's would do). */
  const countIn = async (schema: string, where = 'true') => {
    const [row] = await rawQuery(orm, SHARDS[0]!, `select count(*) as c from "${schema}"."measurement" where ${where}`);
    return Number(row!.c);
  };

  beforeAll(async () => {
    await adminExecute([`create database "${dbName}"`]);
    created = true;
    orm = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      clientUrl: PG_URL,
      dbName,
      entities: [Measurement],
      shards: Object.fromEntries(SHARDS.map(schema => [schema, { schema }])),
      shardChooser: ({ entity }) => shardOfId((entity as Measurement).id),
      idChooser: ({ id }) => [shardOfId(Number(id))],
    });
    await orm.schema.create();
    // Placed with an explicit { shard } (the shard chooser's path is tested on its own below).
    const em = orm.em.fork();
    ROWS.forEach(row => em.create(Measurement, row, { shard: shardOfId(row.id) }));
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    if (created) {
      await adminExecute([`drop database if exists "${dbName}" with (force)`]);
    }
  });

  it('creates the table once in each shard’s schema, and not in public', async () => {
    const tables = await rawQuery(orm, SHARDS[0]!, `select table_schema as s from information_schema.tables where table_name = 'measurement' order by 1`);
    expect(tables.map(row => row.s)).toEqual(SHARDS);
  });

  it('writes every row into its shard’s schema only (schema-qualified counts)', async () => {
    for (const schema of SHARDS) {
      expect(await countIn(schema)).toBe(rowsOf(schema).length);
      const ids = rowsOf(schema).map(row => row.id);
      expect(await countIn(schema, `id not in (${ids.join(',')})`)).toBe(0);
    }
  });

  it('writes new rows placed by the shard chooser into the chosen shard’s schema', async () => {
    const fresh: Row[] = [101, 102, 103, 104, 105, 106].map(id => ({ id, sensor: 'fresh', reading: id }));
    try {
      const em = orm.em.fork();
      const created = fresh.map(row => em.create(Measurement, row));
      await em.flush();
      // The library's own view: every entity is remembered on the chooser's shard...
      expect(created.map(m => em.shardOf(m))).toEqual(fresh.map(row => shardOfId(row.id)));
      // ...and the rows must be in those shards' schemas.
      for (const schema of SHARDS) {
        const mine = fresh.filter(row => shardOfId(row.id) === schema).map(row => row.id);
        const found = await rawQuery(orm, SHARDS[0]!, `select id from "${schema}"."measurement" where sensor = 'fresh' order by id`);
        expect({ schema, ids: found.map(row => Number(row.id)) }).toEqual({ schema, ids: mine });
      }
    } finally {
      for (const schema of SHARDS) {
        await rawQuery(orm, SHARDS[0]!, `delete from "${schema}"."measurement" where sensor = 'fresh'`);
      }
    }
  });

  it('finds by id in the right schema', async () => {
    for (const row of [ROWS[0]!, ROWS[1]!, ROWS[2]!, ROWS[29]!]) {
      const em = orm.em.fork();
      const found = await em.findOneOrFail(Measurement, row.id);
      expect({ id: found.id, sensor: found.sensor, reading: found.reading }).toEqual(row);
      expect(em.shardOf(found)).toBe(shardOfId(row.id));
    }
  });

  it('queries one shard with { shard }: that schema’s rows only', async () => {
    for (const shard of SHARDS) {
      const em = orm.em.fork();
      const found = await em.find(Measurement, {}, { shard, orderBy: { id: 'asc' } });
      expect(found.map(m => m.id)).toEqual(rowsOf(shard).map(row => row.id));
      expect(await em.count(Measurement, {}, { shard })).toBe(rowsOf(shard).length);
    }
  });

  it('merges a fan-out query over every schema, ordered', async () => {
    const expected = [...ROWS].sort((a, b) => b.reading - a.reading || a.id - b.id);
    const em = orm.em.fork();
    const found = await em.find(Measurement, {}, { orderBy: { reading: 'desc', id: 'asc' } });
    expect(found.map(m => ({ id: m.id, sensor: m.sensor, reading: m.reading }))).toEqual(expected);
    expect(found.map(m => em.shardOf(m))).toEqual(expected.map(row => shardOfId(row.id)));
  });

  it('merges a fan-out query that loads partial entities (fields) over every schema, ordered', async () => {
    const expected = [...ROWS].sort((a, b) => a.reading - b.reading || a.id - b.id);
    const em = orm.em.fork();
    const found = await em.find(Measurement, {}, { fields: ['id', 'reading'], orderBy: { reading: 'asc', id: 'asc' } });
    expect(found.map(m => [m.id, m.reading])).toEqual(expected.map(row => [row.id, row.reading]));
    expect(found.map(m => em.shardOf(m))).toEqual(expected.map(row => shardOfId(row.id)));
  });

  it('counts and pages a fan-out over every schema', async () => {
    const expected = [...ROWS].sort((a, b) => a.reading - b.reading || a.id - b.id);
    expect(await orm.em.fork().count(Measurement)).toBe(ROWS.length);
    const sensor = 'sensor-3';
    expect(await orm.em.fork().count(Measurement, { sensor })).toBe(ROWS.filter(row => row.sensor === sensor).length);
    const [page, total] = await orm.em.fork().findAndCount(Measurement, {}, { orderBy: { reading: 'asc', id: 'asc' }, limit: 7, offset: 10 });
    expect(page.map(m => m.id)).toEqual(expected.slice(10, 17).map(row => row.id));
    expect(total).toBe(ROWS.length);
  });
});
