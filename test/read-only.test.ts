/**
 * Read-only shards (`readOnly: true`): every write routed to one is a `READ_ONLY_SHARD` before anything is written
 * on any shard (counted with raw SQL on every shard); reads work; schema operations leave the shard alone. The hot
 * and archive databases of seed 001: new rows go to `hot`, `archive` is only read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migration, Migrator } from '@mikro-orm/migrations';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, ShardingError, type ShardedEntityManager } from 'mikro-orm-sharding';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rawCount, rawQuery } from './seeds/raw.ts';
import { Author, Book, Tag } from './support/entities.ts';

const dir = mkdtempSync(join(tmpdir(), 'mos-read-only-'));
const shards = { hot: { dbName: join(dir, 'hot.db') }, archive: { dbName: join(dir, 'archive.db'), readOnly: true } };
const TABLES = ['author', 'book', 'tag', 'book_tags'];
/** Ids: below 100 on `hot`, from 100 on `archive` (the chooser would put them there, and is refused). */
const home = (id: number) => (id >= 100 ? 'archive' : 'hot');
let orm: ShardedMikroORM<SqliteDriver, 'hot' | 'archive'>;

async function rows(): Promise<Record<string, Record<string, number>>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const shard of orm.shardIds) {
    counts[shard] = {};
    for (const table of TABLES) {
      counts[shard]![table] = await rawCount(orm, shard, table);
    }
    const [names] = await rawQuery(orm, shard, `select group_concat(name, ',') as names from (select name from author order by id)`);
    counts[shard]!.names = String(names!.names).length;
  }
  return counts;
}

/** Runs `write`, expects READ_ONLY_SHARD naming the archive, and that no row changed on any shard. */
async function refused(write: (em: ShardedEntityManager<'hot' | 'archive'>) => Promise<unknown>, em = orm.em.fork()): Promise<ShardingError> {
  const before = await rows();
  const error = await write(em).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ShardingError);
  expect(error).toMatchObject({ code: 'READ_ONLY_SHARD', shard: 'archive' });
  expect(await rows()).toEqual(before);
  return error as ShardingError;
}

beforeAll(async () => {
  // The archive is filled by a fleet that may write it (as another process would), then opened read-only.
  const writer = await ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Author, Book, Tag],
    shards: { hot: shards.hot, archive: { dbName: shards.archive.dbName } },
    shardChooser: ({ entity }) => home(entity instanceof Book ? entity.author.id : (entity as Author | Tag).id),
  });
  await writer.schema.create();
  const em = writer.em.fork();
  const old = em.create(Author, { id: 100, name: 'old' });
  const tag = em.create(Tag, { id: 100, label: 'classic' });
  em.create(Book, { id: 100, title: 'old book', author: old, tags: [tag] });
  em.create(Author, { id: 1, name: 'new' });
  await em.flush();
  await writer.close();

  orm = await ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Author, Book, Tag],
    shards,
    shardChooser: ({ entity }) => home(entity instanceof Book ? entity.author.id : (entity as Author | Tag).id),
    idChooser: ({ id }) => [home(Number(id))],
  });
});

afterAll(async () => {
  await orm?.close(true);
  rmSync(dir, { recursive: true, force: true });
});

describe('a read-only shard', () => {
  beforeEach(async () => {
    expect(await rawCount(orm, 'archive', 'author')).toBe(1);
  });

  it('is read as any shard', async () => {
    const em = orm.em.fork();
    const book = await em.findOneOrFail(Book, 100, { populate: ['author', 'tags'] });
    expect([book.title, book.author.name, book.tags.getItems().map(t => t.label)]).toEqual(['old book', 'old', ['classic']]);
    expect(em.shardOf(book)).toBe('archive');
    expect((await em.find(Author, {}, { orderBy: { id: 'asc' } })).map(a => a.name)).toEqual(['new', 'old']);
    expect(await em.count(Book)).toBe(1);
  });

  it('refuses a new entity its chooser sends there, and writes none of the flush', async () => {
    const error = await refused(async em => {
      em.create(Author, { id: 2, name: 'hot one' });
      em.create(Author, { id: 101, name: 'archived one' });
      await em.flush();
    });
    expect(error.message).toMatch(/^Cannot write Author#101 on shard "archive" \(routed by shardChooser\): the shard is read-only/);
  });

  it('refuses { shard }, a pin, and the auto-flush of a query', async () => {
    await refused(async em => {
      em.create(Author, { id: 3, name: 'explicit' }, { shard: 'archive' });
      await em.flush();
    });
    await refused(
      async em => {
        em.create(Author, { id: 4, name: 'pinned' });
        await em.flush();
      },
      orm.em.fork({ shard: 'archive' }),
    );
    await refused(async em => {
      em.create(Author, { id: 5, name: 'queried' }, { shard: 'archive' });
      await em.find(Author, {});
    });
  });

  it('refuses insert, insertMany, upsert and upsertMany routed there, writing no row of the call', async () => {
    await refused(em => em.insert(Author, { id: 102, name: 'x' }));
    await refused(em => em.insert(Author, { id: 6, name: 'x' }, { shard: 'archive' }));
    await refused(em =>
      em.insertMany(Author, [
        { id: 7, name: 'hot' },
        { id: 103, name: 'archive' },
      ]),
    );
    await refused(em => em.upsert(Author, { id: 100, name: 'renamed' }));
    await refused(em =>
      em.upsertMany(Author, [
        { id: 1, name: 'renamed' },
        { id: 100, name: 'renamed' },
      ]),
    );
  });

  it('refuses nativeUpdate and nativeDelete reaching it, changing no shard', async () => {
    const error = await refused(em => em.nativeUpdate(Author, {}, { name: 'everyone' }));
    expect(error.message).toMatch(/^Cannot nativeUpdate Author on shard "archive" \(routed by the query routing\)/);
    await refused(em => em.nativeDelete(Book, { id: 100 }, { shard: 'archive' }));
    // The writable shard alone is fine.
    expect(await orm.em.fork().nativeUpdate(Author, { id: 1 }, { name: 'new' }, { shard: 'hot' })).toBe(1);
  });

  it('refuses a flush that changes or removes an entity loaded from it, with the rest of the flush', async () => {
    const em = orm.em.fork();
    const old = await em.findOneOrFail(Author, 100);
    const fresh = await em.findOneOrFail(Author, 1);
    old.name = 'changed';
    fresh.name = 'changed too';
    const error = await refused(() => em.flush(), em);
    expect(error.message).toMatch(/^Cannot update Author#100 on shard "archive"/);

    const remover = orm.em.fork();
    remover.remove(await remover.findOneOrFail(Book, 100));
    await refused(() => remover.flush(), remover);

    const tagger = orm.em.fork();
    const book = await tagger.findOneOrFail(Book, 100, { populate: ['tags'] });
    book.tags.removeAll();
    const collection = await refused(() => tagger.flush(), tagger);
    expect(collection.message).toMatch(/Book#100/);
  });

  it('refuses an auto-flush before a query of a changed entity, and writes through em.on(shard) flushed by em.flush()', async () => {
    const em = orm.em.fork();
    const old = await em.findOneOrFail(Author, 100);
    old.name = 'auto-flushed';
    // MikroORM auto-flushes a changed entity only with flushMode 'always' (or once something was persisted).
    expect(await em.find(Author, { name: 'x' }, { shard: 'archive' })).toEqual([]);
    await refused(() => em.find(Author, { name: 'x' }, { shard: 'archive', flushMode: 'always' }), em);

    const other = orm.em.fork();
    other.on('archive').persist(other.on('archive').create(Tag, { id: 200, label: 'sneaky' }));
    await refused(() => other.flush(), other);
    // MikroORM's own flush of the shard's fork is guarded too.
    await refused(() => other.on('archive').flush(), other);
  });

  it('is left alone by schema operations, and named in none of their failures', async () => {
    const sql = await orm.schema.getCreateSchemaSQL();
    expect([...sql.keys()]).toEqual(['hot', 'archive']);
    await orm.schema.update();
    await orm.schema.clear();
    expect(await rawCount(orm, 'hot', 'author')).toBe(0);
    expect(await rawCount(orm, 'archive', 'author')).toBe(1);
    await orm.schema.drop();
    await expect(rawCount(orm, 'hot', 'author')).rejects.toThrow(/no such table/);
    expect(await rawCount(orm, 'archive', 'book')).toBe(1);
    await orm.schema.create();
    const em = orm.em.fork();
    em.create(Author, { id: 1, name: 'new' });
    await em.flush();
  });
});

describe('migrations on a fleet with a read-only shard', () => {
  class AddNote extends Migration {
    override up(): void {
      this.addSql('create table note (id integer primary key)');
    }
  }

  it('migrates the writable shards, refuses a read-only one named in `shards`, and reports where each stands', async () => {
    const migrating = await ShardedMikroORM.init({
      driver: SqliteDriver,
      entities: [Tag],
      extensions: [Migrator],
      migrations: { migrationsList: [{ name: 'AddNote', class: AddNote }], snapshot: false, silent: true },
      shards: { hot: { dbName: join(dir, 'm-hot.db') }, archive: { dbName: join(dir, 'm-archive.db'), readOnly: true } },
      shardChooser: () => 'hot',
    });
    try {
      const report = await migrating.migrator.up();
      expect(report.map(shard => [shard.shard, shard.migrations])).toEqual([['hot', ['AddNote']]]);
      await expect(migrating.migrator.up({ shards: ['hot', 'archive'] })).rejects.toMatchObject({ code: 'READ_ONLY_SHARD', shard: 'archive' });
      const pending = await migrating.migrator.pending();
      expect([...pending].map(([shard, list]) => [shard, list.map(m => m.name)])).toEqual([
        ['hot', []],
        ['archive', ['AddNote']],
      ]);
      expect(await rawQuery(migrating, 'archive', `select name from sqlite_master where name = 'note'`)).toEqual([]);
    } finally {
      await migrating.close(true);
    }
  });
});
