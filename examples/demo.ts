/**
 * The demo: four SQLite shards in a temp dir. Authors live on `id % 4`, each book with its author.
 * Run with `pnpm demo` (it needs no database server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, ShardingError } from 'mikro-orm-sharding';

const AuthorSchema = defineEntity({
  name: 'Author',
  properties: {
    id: p.integer().primary().autoincrement(false),
    name: p.string(),
    books: () => p.oneToMany(Book).mappedBy('author'),
  },
});
class Author extends AuthorSchema.class {}
AuthorSchema.setClass(Author);

const BookSchema = defineEntity({
  name: 'Book',
  properties: {
    id: p.integer().primary().autoincrement(false),
    title: p.string(),
    sales: p.integer(),
    author: () => p.manyToOne(Author),
  },
});
class Book extends BookSchema.class {}
BookSchema.setClass(Book);

const dir = mkdtempSync(join(tmpdir(), 'mikro-orm-sharding-demo-'));
const shardIds = ['s0', 's1', 's2', 's3'];
const authorShard = (id: number) => shardIds[id % shardIds.length]!;

const orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Author, Book],
  shards: Object.fromEntries(shardIds.map(id => [id, { dbName: join(dir, `${id}.db`) }])),
  // A new author goes to id % 4; a new book goes wherever its author lives.
  shardChooser: ({ entity, em }) => (entity instanceof Book ? em.shardOf(entity.author)! : authorShard((entity as Author).id)),
  // An author's id names its shard; a book may be on any of them.
  idChooser: ({ entityName, id }) => (entityName === 'Author' ? [authorShard(Number(id))] : shardIds),
});

try {
  await orm.schema.create();

  const names = ['Ursula Le Guin', 'Octavia Butler', 'Stanisław Lem', 'Iain Banks', 'N. K. Jemisin', 'Ted Chiang', 'Liu Cixin'];
  const em = orm.em.fork();
  names.forEach((name, i) => {
    const author = em.create(Author, { id: i + 1, name });
    for (let b = 0; b < 3; b++) {
      em.create(Book, { id: (i + 1) * 100 + b, title: `${name.split(' ').pop()} vol. ${b + 1}`, sales: ((i + 3) * (b + 7) * 7919) % 100_000, author });
    }
  });
  await em.flush();

  console.log('\nWhere each author landed (shard chooser: id % 4; books follow their author):');
  for (const author of await orm.em.fork().find(Author, {}, { orderBy: { id: 'asc' } })) {
    console.log(`  ${author.name.padEnd(16)} -> ${orm.em.shardOf(author)}`);
  }

  const page = await orm.em.fork().find(Book, {}, { orderBy: { sales: 'desc' }, limit: 5, offset: 2, populate: ['author'] });
  console.log('\nBest sellers 3-7, merged across all four shards in global order:');
  for (const book of page) {
    console.log(`  ${String(book.sales).padStart(6)}  ${book.title.padEnd(16)} by ${book.author.name.padEnd(16)} (${orm.em.shardOf(book)})`);
  }

  const reader = orm.em.fork();
  const lem = await reader.findOneOrFail(Author, 3, { populate: ['books'] });
  console.log(`\nAuthor 3 found by id on ${reader.shardOf(lem)} only, with ${lem.books.length} books loaded from the same shard.`);

  console.log('\nRows per shard:');
  for (const shard of orm.shardIds) {
    const fork = orm.em.fork();
    console.log(`  ${shard}: ${await fork.count(Author, {}, { shard })} authors, ${await fork.count(Book, {}, { shard })} books`);
  }
  console.log(`  all: ${await orm.em.fork().count(Book)} books (counts summed)`);

  const bad = orm.em.fork();
  bad.create(Book, { id: 999, title: 'Stray', sales: 1, author: lem }, { shard: 's0' });
  await bad
    .flush()
    .catch((error: ShardingError) => console.log(`\nA cross-shard write is refused before anything is written:\n  ${error.code}: ${error.message}`));
} finally {
  await orm.close();
  rmSync(dir, { recursive: true, force: true });
}
