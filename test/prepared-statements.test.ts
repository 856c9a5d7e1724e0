import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableNotFoundException } from '@mikro-orm/core';
import { shardFailureOf, type ShardedMikroORM } from 'mikro-orm-sharding';
import { Author } from './support/entities.ts';
import { openFleet, seedRows } from './support/fleet.ts';
import { postgresTopology, type Topology } from './support/topology.ts';

// Merged reads on PostgreSQL run as named prepared statements; a migration must not break them.
describe('prepared statements on PostgreSQL shards', () => {
  let topology: Topology;
  let orm: ShardedMikroORM;

  beforeAll(async () => {
    topology = postgresTopology();
    orm = await openFleet(topology);
    const em = orm.em.fork();
    for (const row of seedRows()) {
      em.create(Author, { id: row.id, name: row.name, born: row.born, rating: row.rating });
    }
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  const page = async () => (await orm.em.fork().find(Author, { born: { $gte: 1950 } }, { orderBy: { id: 'asc' }, limit: 5 })).map(a => a.id);

  it('keeps answering after a table changes shape under a prepared statement', async () => {
    const before = await page();
    expect(before).toHaveLength(5);
    expect(await page()).toEqual(before);
    for (const shard of orm.shardIds) {
      await orm.shard(shard).em.fork().getConnection().execute('alter table "author" add column "nickname" varchar(20) null');
    }
    expect(await page()).toEqual(before);
    expect(await page()).toEqual(before);
    expect(await orm.em.fork().count(Author, { born: { $gte: 1950 } })).toBe(seedRows().filter(r => r.born !== null && r.born >= 1950).length);
  });

  it('still rejects a failing query with the database error', async () => {
    for (const shard of orm.shardIds) {
      await orm.shard(shard).em.fork().getConnection().execute('alter table "author" rename to "writer"');
    }
    try {
      const error = await orm.em
        .fork()
        .count(Author, { born: { $gte: 1950 } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TableNotFoundException);
      expect(shardFailureOf(error)).toMatchObject({ operation: 'count', shard: 's0', failed: [{ shard: 's0' }, { shard: 's1' }, { shard: 's2' }] });
    } finally {
      for (const shard of orm.shardIds) {
        await orm.shard(shard).em.fork().getConnection().execute('alter table "writer" rename to "author"');
      }
    }
  });
});
