import type { EntityRepository, InferEntity, Loaded, Ref } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sqlite';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { describe, expectTypeOf, it } from 'vitest';
import {
  copyBroadcastRows,
  ShardedMikroORM,
  ShardedRequestContext,
  type ChosenShard,
  type IdChooser,
  type MaybePromise,
  type ShardChooser,
  type ShardedEntityManager,
  type ShardedEntityRepository,
  type ShardedRepository,
  type ShardOptions,
} from 'mikro-orm-sharding';
import { Author, AuthorSchema, Book, Tag } from '../support/entities.ts';
import { Review, ReviewRepository } from '../support/reviews.ts';

// Type tests: checked by tsc (vitest's typecheck mode), never run. A fleet with literal shard ids and its plain twin.
declare const typed: ShardedMikroORM<SqliteDriver, 's0' | 's1'>;
declare const em: ShardedEntityManager<'s0' | 's1'>;
declare const plain: SqlEntityManager;
declare const author: Author;
declare const books: Book[];

describe('shard ids typed from the shards option', () => {
  it('infers the ids of a literal shards map, and string for a map built at runtime', async () => {
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book, Tag],
      shards: { s0: { dbName: 's0.db' }, s1: { dbName: 's1.db' } },
      shardChooser: ({ entity, em }) => (entity instanceof Book ? (em.shardOf(entity.author) ?? 's0') : entity.id % 2 ? 's1' : 's0'),
      idChooser: () => ['s0', 's1'],
    });
    expectTypeOf(orm).toEqualTypeOf<ShardedMikroORM<SqliteDriver, 's0' | 's1'>>();
    expectTypeOf(orm.shardIds).toEqualTypeOf<readonly ('s0' | 's1')[]>();
    expectTypeOf(orm.em).toEqualTypeOf<ShardedEntityManager<'s0' | 's1'>>();

    const shards: Record<string, ShardOptions<SqliteDriver>> = { a: { dbName: 'a.db' } };
    const built = await ShardedMikroORM.init({ driver: SqliteDriver, entities: [Author], shards, shardChooser: () => `s${Math.random()}` });
    expectTypeOf(built).toEqualTypeOf<ShardedMikroORM<SqliteDriver, string>>();
    built.em.fork().on('anything');
  });

  it('refuses an unknown literal shard id at compile time', () => {
    // @ts-expect-error 's9' is not a shard
    em.on('s9');
    // @ts-expect-error 's9' is not a shard
    void em.find(Author, {}, { shard: 's9' });
    // @ts-expect-error 's9' is not a shard
    em.create(Author, { id: 1, name: 'x' }, { shard: 's9' });
    // @ts-expect-error 's9' is not a shard
    typed.shard('s9');
    // @ts-expect-error 's9' is not a shard
    em.move(author, 's9');
    expectTypeOf(em.move([author], 's1')).toEqualTypeOf<ShardedEntityManager<'s0' | 's1'>>();
    // @ts-expect-error 's9' is not a shard
    void copyBroadcastRows(typed, 's9');
    em.on('s1');
    void em.count(Author, {}, { shard: 's0' });
    expectTypeOf(em.shardOf(author)).toEqualTypeOf<'s0' | 's1' | undefined>();
  });

  it('lets choosers return ids computed at run time (checked then), while ids you pass are checked by the compiler', async () => {
    const orm = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author],
      shards: { s0: {}, s1: {} },
      shardChooser: ({ entity }) => `s${entity.id % 2}`,
      idChooser: ({ id }) => [`s${Number(id) % 2}`],
    });
    const idChooser: IdChooser<'hot' | 'archive'> = () => ['hot', 'archive'];
    expectTypeOf(idChooser).returns.toEqualTypeOf<MaybePromise<readonly ChosenShard<'hot' | 'archive'>[] | undefined>>();
    // @ts-expect-error 's9' is not a shard of this fleet
    orm.em.fork().on('s9');
  });

  it('types the shard chooser’s entity from the entities option, so instanceof narrows without casts', async () => {
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Author, Book],
      shards: { s0: {}, s1: { entities: [Review] } },
      shardChooser: ({ entity }) => {
        expectTypeOf(entity).toEqualTypeOf<Author | Book | Review>();
        return entity instanceof Book || entity instanceof Review ? 's0' : entity.name.length % 2 ? 's1' : 's0';
      },
    });
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [AuthorSchema, Tag],
      shards: { s0: {} },
      shardChooser: ({ entity }) => {
        expectTypeOf(entity).toEqualTypeOf<InferEntity<typeof AuthorSchema> | Tag>();
        return 's0';
      },
    });
    await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: ['dist/entities'],
      shards: { s0: {} },
      shardChooser: ({ entity }) => {
        expectTypeOf(entity).toEqualTypeOf<object>();
        return 's0';
      },
    });
    const chooser: ShardChooser<'s0' | 's1', Author | Book> = ({ entity, em }) =>
      entity instanceof Book ? (em.shardOf(entity.author) ?? 's0') : entity.id % 2 ? 's1' : 's0';
    void chooser;
  });

  it('keeps the ids on the request context’s entity manager', () => {
    expectTypeOf(ShardedRequestContext.getEntityManager(typed)).toEqualTypeOf<ShardedEntityManager<'s0' | 's1'> | undefined>();
  });

  it('lets a fleet with typed ids stand wherever any fleet is expected', () => {
    const any: ShardedMikroORM = typed;
    const anyEm: ShardedEntityManager = em;
    void [any, anyEm];
  });
});

describe('the entity manager typed as MikroORM types it', () => {
  it('getReference: an entity, or a Ref with { wrapped: true }', () => {
    expectTypeOf(em.getReference(Author, 1)).toEqualTypeOf<Author>();
    expectTypeOf(em.getReference(Author, 1, { wrapped: true })).toEqualTypeOf<Ref<Author>>();
    expectTypeOf(em.getReference(Author, 1, { wrapped: true, shard: 's1' })).toEqualTypeOf<Ref<Author>>();
    expectTypeOf(em.getReference(Author, 1, { wrapped: false })).toEqualTypeOf<Author>();
    expectTypeOf(em.getReference(Author, 'ann', { key: 'name', shard: 's0' })).toEqualTypeOf<Author>();
    expectTypeOf(em.getReference(Author, 1, { wrapped: true })).toEqualTypeOf(plain.getReference(Author, 1, { wrapped: true }));
  });

  it('populate and refresh: Loaded types with their hints', () => {
    expectTypeOf(em.populate(author, ['books'])).toEqualTypeOf(plain.populate(author, ['books']));
    expectTypeOf(em.populate(books, ['author', 'tags'])).toEqualTypeOf(plain.populate(books, ['author', 'tags']));
    expectTypeOf(em.populate(author, ['books'])).resolves.toExtend<Loaded<Author, 'books'>>();
    expectTypeOf(em.refresh(author, { populate: ['books'] })).toEqualTypeOf(plain.refresh(author, { populate: ['books'] }));
    expectTypeOf(em.refreshOrFail(author, { shard: 's0' })).toEqualTypeOf(plain.refreshOrFail(author));
    // @ts-expect-error not a relation of Author
    void em.populate(author, ['nope']);
  });

  it('insert, insertMany, upsert and upsertMany return what MikroORM’s do', () => {
    expectTypeOf(em.insert(Author, { id: 1, name: 'x' })).toEqualTypeOf(plain.insert(Author, { id: 1, name: 'x' }));
    expectTypeOf(em.insertMany(Author, [{ id: 1, name: 'x' }])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(em.insert(author)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(em.upsert(Author, { id: 1, name: 'x' }, { shard: 's0' })).toEqualTypeOf(plain.upsert(Author, { id: 1, name: 'x' }));
    expectTypeOf(em.upsertMany(Author, [{ id: 1, name: 'x' }])).toEqualTypeOf(plain.upsertMany(Author, [{ id: 1, name: 'x' }]));
    expectTypeOf(em.upsertMany(books)).toEqualTypeOf<Promise<Book[]>>();
    void em.upsert(Author, { id: 1, name: 'x' }, { onConflictFields: ['id'], onConflictMergeFields: ['name'] });
    // @ts-expect-error Author has no title
    void em.insert(Author, { id: 1, title: 'x' });
  });

  it('filters take MikroORM’s filter definitions', () => {
    expectTypeOf(em.addFilter).parameter(0).toEqualTypeOf<Parameters<SqlEntityManager['addFilter']>[0]>();
    expectTypeOf(em.getFilterParams<{ year: number }>('bornAfter')).toEqualTypeOf<{ year: number }>();
  });
});

describe('repositories', () => {
  it('gives your declared repository class, whose getEntityManager() is the sharded entity manager', () => {
    const reviews = em.getRepository(Review);
    expectTypeOf(reviews).toEqualTypeOf<ShardedRepository<ReviewRepository, 's0' | 's1'>>();
    expectTypeOf(reviews.best(3)).toEqualTypeOf<ReturnType<ReviewRepository['best']>>();
    expectTypeOf(reviews.getEntityManager()).toEqualTypeOf<ShardedEntityManager<'s0' | 's1'>>();
    const asDeclared: ReviewRepository = reviews;
    void asDeclared;
    expectTypeOf(em.repo(Review)).toEqualTypeOf(reviews);
  });

  it('gives MikroORM’s EntityRepository without a custom class', () => {
    const authors = em.getRepository(Author);
    expectTypeOf(authors).toEqualTypeOf<ShardedEntityRepository<Author, 's0' | 's1'>>();
    expectTypeOf(authors).toExtend<EntityRepository<Author>>();
    expectTypeOf(authors.findOne(1)).toEqualTypeOf<Promise<Loaded<Author, never> | null>>();
  });
});
