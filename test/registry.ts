import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';
import type { Topology } from './support/topology.ts';

/** Rows of `author` on each shard, counted with raw SQL through each shard's own MikroORM. */
async function authorRows(orm: ShardedMikroORM): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const id of orm.shardIds) {
    const [row] = await orm.shard(id).em.fork().getConnection().execute('select count(*) as c from author');
    counts[id] = Number(row!.c);
  }
  return counts;
}

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    expect(error).toBeInstanceOf(ShardingError);
    return (error as ShardingError).code;
  }
  return undefined;
}

/** The runtime shard registry on one kind of database (see docs/registry.md). */
export function registryBehaviour(makeTopology: () => Topology): void {
  describe('the runtime shard registry', () => {
    let topology: Topology;
    let orm: ShardedMikroORM;

    beforeAll(async () => {
      topology = makeTopology();
      orm = await ShardedMikroORM.init({
        ...topology.shared,
        entities,
        shards: {},
        maxOpenShards: 1,
        // Each shard gets its schema when it first connects.
        onShardOpen: async ({ orm: shard }) => {
          await shard.schema.ensureDatabase();
          await shard.schema.update();
        },
        shardChooser: ({ em }) => em.orm.shardIds.at(-1)!,
      });
    });
    afterAll(async () => {
      await orm?.close();
      await topology?.dispose();
    });

    it('starts empty, adds shards that open only when used', async () => {
      expect(orm.shardIds).toEqual([]);
      await orm.addShard('a', topology.database('a'));
      await orm.addShard('b', topology.database('b'));
      expect(orm.shardIds).toEqual(['a', 'b']);
      expect(orm.shards.size).toBe(0);
      const em = orm.em.fork();
      em.create(Author, { id: 1, name: 'Ann' }, { shard: 'a' });
      await em.flush();
      expect([...orm.shards.keys()]).toEqual(['a']);
      em.create(Author, { id: 2, name: 'Bob' }, { shard: 'b' });
      await em.flush();
      // maxOpenShards 1: using b closed a.
      expect([...orm.shards.keys()]).toEqual(['b']);
      expect(await orm.em.fork().count(Author, {})).toBe(2);
    });

    it('reopens a closed shard transparently, and entities loaded before keep their shard for flush', async () => {
      const em = orm.em.fork();
      const ann = await em.findOneOrFail(Author, 1, { shard: 'a' } as never);
      expect(em.shardOf(ann)).toBe('a');
      await em.fork().findOneOrFail(Author, 2);
      // b is the only one open; Ann's shard was closed under her.
      ann.name = 'Ann II';
      await em.flush();
      expect(em.shardOf(ann)).toBe('a');
      const [row] = await orm.shard('a').em.fork().getConnection().execute('select name from author where id = 1');
      expect(row!.name).toBe('Ann II');
      expect(await authorRows(orm)).toEqual({ a: 1, b: 1 });
    });

    it('never closes a shard with a live transaction', async () => {
      const em = orm.em.fork();
      await em.begin();
      em.create(Author, { id: 3, name: 'Cy' }, { shard: 'a' });
      await em.flush();
      // Using b needs a slot: a is busy, so both stay open.
      expect(await orm.em.fork().count(Author, {}, { shard: 'b' } as never)).toBe(1);
      expect(orm.shards.has('a')).toBe(true);
      await em.commit();
      expect(await orm.em.fork().count(Author, {}, { shard: 'b' } as never)).toBe(1);
      expect([...orm.shards.keys()]).toEqual(['b']);
      expect(await authorRows(orm)).toEqual({ a: 2, b: 1 });
    });

    it('never closes a shard with a query in flight or a lease', async () => {
      // better-sqlite3 runs a query synchronously: there a lease holds the shard; PostgreSQL's query runs meanwhile.
      const lease = topology.name === 'sqlite' ? await orm.leaseShard('a') : { orm: orm.shard('a'), release: () => undefined };
      const slow = lease.orm.em.fork().getConnection().execute(slowQuery(topology));
      expect(await orm.em.fork().count(Author, {}, { shard: 'b' } as never)).toBe(1);
      expect(orm.shards.has('a')).toBe(true);
      await slow;
      lease.release();
      expect(await orm.em.fork().count(Author, {}, { shard: 'b' } as never)).toBe(1);
      expect([...orm.shards.keys()]).toEqual(['b']);
    });

    it('refuses duplicate, unknown and malformed ids, writing nothing', async () => {
      const before = await authorRows(orm);
      expect(await codeOf(orm.addShard('a', topology.database('x')))).toBe('DUPLICATE_SHARD');
      expect(await codeOf(orm.addShard('bad id!', topology.database('x')))).toBe('INVALID_OPTIONS');
      expect(await codeOf(orm.addShard('c', 'not a url'))).toBe('INVALID_OPTIONS');
      expect(await codeOf(orm.removeShard('nope'))).toBe('UNKNOWN_SHARD');
      expect(await codeOf(() => orm.shard('nope'))).toBe('UNKNOWN_SHARD');
      const em = orm.em.fork();
      expect(await codeOf(() => em.create(Author, { id: 9, name: 'Nope' }, { shard: 'nope' } as never))).toBe('UNKNOWN_SHARD');
      await em.flush();
      expect(orm.shardIds).toEqual(['a', 'b']);
      expect(await authorRows(orm)).toEqual(before);
    });

    it('removeShard waits for a transaction on the shard, then refuses it with SHARD_REMOVED', async () => {
      await orm.addShard('c', topology.database('c'));
      const em = orm.em.fork();
      await em.begin();
      em.create(Author, { id: 10, name: 'Dee' }, { shard: 'c' });
      await em.flush();
      let removed = false;
      const removing = orm.removeShard('c').then(() => {
        removed = true;
      });
      await new Promise(resolve => setTimeout(resolve, 50));
      expect(removed).toBe(false);
      expect(orm.shardIds).toEqual(['a', 'b']);
      await em.commit();
      await removing;
      expect(removed).toBe(true);
      expect(await codeOf(() => orm.shard('c'))).toBe('SHARD_REMOVED');
      expect(await codeOf(orm.em.fork().find(Author, {}, { shard: 'c' } as never))).toBe('SHARD_REMOVED');
      expect(await codeOf(() => orm.em.fork({ shard: 'c' } as never))).toBe('SHARD_REMOVED');
      expect(await codeOf(() => orm.em.fork().create(Author, { id: 10, name: 'Gone' }, { shard: 'c' } as never))).toBe('SHARD_REMOVED');
      // Added again, it holds what was committed before its removal.
      await orm.addShard('c2', topology.database('c'));
      const lease = await orm.leaseShard('c2');
      lease.release();
      expect((await orm.em.fork().find(Author, {}, { shard: 'c2' } as never)).map(a => a.name)).toEqual(['Dee']);
      await orm.removeShard('c2');
    });
  });
}

function slowQuery(topology: Topology): string {
  return topology.name === 'postgresql'
    ? 'select pg_sleep(0.3)'
    : 'with recursive n(i) as (select 1 union all select i + 1 from n where i < 1000) select count(*) from n';
}
