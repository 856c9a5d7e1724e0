import { Reference, Utils, type CountOptions, type FilterQuery, type FindOptions, type Primary } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import murmurhash from 'murmurhash';
import { describe, expectTypeOf, it } from 'vitest';
import { ShardedMikroORM, type ChosenShard, type IdChooser, type QueryChooser, type ShardChooser, type ShardedEntityManager } from 'mikro-orm-sharding';
import { Author, Book } from '../support/entities.ts';

// The choosers of docs/choosers.md, as written there, compile against fleets with typed shard ids.

describe('docs/choosers.md signatures', () => {
  it('state the exported chooser types', () => {
    type DocShardChooser<Id extends string = string, Entity extends object = object> = (args: {
      entity: Entity;
      entityName: string;
      em: ShardedEntityManager<Id>;
    }) => ChosenShard<Id> | undefined | Promise<ChosenShard<Id> | undefined>;
    type DocIdChooser<Id extends string = string> = (args: {
      entityName: string;
      id: Primary<object>;
      em: ShardedEntityManager<Id>;
    }) => readonly ChosenShard<Id>[] | undefined | Promise<readonly ChosenShard<Id>[] | undefined>;
    type DocQueryChooser<Id extends string = string> = (args: {
      entityName: string;
      where: FilterQuery<object>;
      options: FindOptions<object, string, string, string> | CountOptions<object, string>;
      em: ShardedEntityManager<Id>;
      shardKeys: readonly unknown[] | undefined;
    }) => readonly ChosenShard<Id>[] | undefined | Promise<readonly ChosenShard<Id>[] | undefined>;
    expectTypeOf<DocShardChooser>().toExtend<ShardChooser>();
    expectTypeOf<ShardChooser>().toExtend<DocShardChooser>();
    expectTypeOf<DocShardChooser<'a', Author>>().toExtend<ShardChooser<'a', Author>>();
    expectTypeOf<ShardChooser<'a', Author>>().toExtend<DocShardChooser<'a', Author>>();
    expectTypeOf<DocIdChooser<'a'>>().toExtend<IdChooser<'a'>>();
    expectTypeOf<IdChooser<'a'>>().toExtend<DocIdChooser<'a'>>();
    expectTypeOf<DocQueryChooser<'a'>>().toExtend<QueryChooser<'a'>>();
    expectTypeOf<QueryChooser<'a'>>().toExtend<DocQueryChooser<'a'>>();
  });
});

describe('docs/choosers.md recipes, typed', () => {
  it('hash by id', async () => {
    const shardIds = ['s0', 's1', 's2', 's3'] as const;
    type Shard = (typeof shardIds)[number];
    const hashShard = (key: string | number) => shardIds[murmurhash.v3(String(key)) % shardIds.length]!;
    const shardChooser: ShardChooser<Shard, Author | Book> = ({ entity, em }) =>
      entity instanceof Book ? (em.shardOf(entity.author) ?? hashShard(entity.author.id)) : hashShard(entity.id);
    const idChooser: IdChooser<Shard> = ({ entityName, id }) => (entityName === 'Author' ? [hashShard(id as number)] : shardIds);
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book],
      shards: { s0: {}, s1: {}, s2: {}, s3: {} },
      shardChooser,
      idChooser,
    });
    expectTypeOf(orm.shardIds).toEqualTypeOf<readonly Shard[]>();
  });

  it('ranges', async () => {
    const ranges = [
      { shard: 'r0', from: 0, to: 1_000_000 },
      { shard: 'r1', from: 1_000_000, to: 2_000_000 },
      { shard: 'r2', from: 2_000_000, to: Number.POSITIVE_INFINITY },
    ] as const;
    type Range = (typeof ranges)[number]['shard'];
    const rangeShard = (id: number) => ranges.find(r => id >= r.from && id < r.to)?.shard;
    const shardChooser: ShardChooser<Range, Author | Book> = ({ entity, em }) =>
      entity instanceof Book ? (em.shardOf(entity.author) ?? rangeShard(entity.author.id))! : rangeShard(entity.id)!;
    const idChooser: IdChooser<Range> = ({ entityName, id }) => (entityName === 'Author' ? [rangeShard(Number(id))!] : ranges.map(r => r.shard));
    const queryChooser: QueryChooser<Range> = ({ entityName, where }) => {
      const all = ranges.map(r => r.shard);
      const id = entityName === 'Author' ? (where as { id?: unknown }).id : undefined;
      if (typeof id === 'number') return [rangeShard(id)!];
      if (id === null || typeof id !== 'object') return all;
      const { $gte, $gt, $lt, $lte } = id as Record<string, number | undefined>;
      const low = $gte ?? ($gt === undefined ? Number.NEGATIVE_INFINITY : $gt + 1);
      const high = $lt ?? ($lte === undefined ? Number.POSITIVE_INFINITY : $lte + 1);
      const hit = ranges.filter(r => r.from < high && low < r.to).map(r => r.shard);
      return hit.length > 0 ? hit : [all[0]!];
    };
    await ShardedMikroORM.init({ driver: SqliteDriver, entities: [Author, Book], shards: { r0: {}, r1: {}, r2: {} }, shardChooser, idChooser, queryChooser });
  });

  it('a tenant per database, from configuration', async () => {
    const currentTenant = (): string => 'acme';
    const tenants: string[] = ['acme', 'globex'];
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book],
      shards: Object.fromEntries(tenants.map(id => [id, { dbName: `tenant_${id}` }])),
      shardChooser: () => currentTenant(),
      idChooser: () => [currentTenant()],
      queryChooser: () => [currentTenant()],
    });
    expectTypeOf(orm).toEqualTypeOf<ShardedMikroORM<SqliteDriver, string>>();
  });

  it('hot and archive, one database per entity', async () => {
    const queryChooser: QueryChooser<'hot' | 'archive'> = ({ where }) => {
      const since = (where as { createdAt?: { $gte?: unknown } }).createdAt?.$gte;
      return since instanceof Date ? ['hot'] : ['hot', 'archive'];
    };
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author],
      shards: { hot: { dbName: 'hot.db' }, archive: { dbName: 'archive.db' } },
      shardChooser: () => 'hot',
      idChooser: () => ['hot', 'archive'],
      queryChooser,
    });
    const home: Record<string, 'main' | 'warehouse' | 'log'> = { Author: 'main', Book: 'warehouse' };
    const homeOf = (entityName: string) => home[entityName];
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book],
      shards: { main: { dbName: 'main' }, warehouse: { dbName: 'warehouse' }, log: { dbName: 'log' } },
      shardChooser: ({ entityName }) => homeOf(entityName)!,
      idChooser: ({ entityName }) => [homeOf(entityName)!],
      queryChooser: ({ entityName }) => [homeOf(entityName)!],
    });
  });

  it('a query chooser that reads where', () => {
    const shardIds = ['s0', 's1', 's2', 's3'] as const;
    type Shard = (typeof shardIds)[number];
    const authorShard = (authorId: number) => shardIds[authorId % shardIds.length]!;
    const pinned = (where: unknown, prop: string): unknown[] | undefined => {
      const value = (where as Record<string, unknown>)[prop];
      return value === undefined || Utils.isEntity(value, true) ? undefined : [value];
    };
    const queryChooser: QueryChooser<Shard> = ({ entityName, where, em }) => {
      const keys = entityName === 'Author' ? pinned(where, 'id') : entityName === 'Book' ? pinned(where, 'author') : undefined;
      if (!keys) return shardIds;
      const shards = keys.map(key => {
        if (typeof key === 'number') return authorShard(key);
        const author = Reference.unwrapReference(key as object) as Author;
        return em.shardOf(author) ?? authorShard(author.id);
      });
      return shards.length > 0 ? shards : [shardIds[0]!];
    };
    expectTypeOf(queryChooser).toExtend<QueryChooser<Shard>>();
  });
});
