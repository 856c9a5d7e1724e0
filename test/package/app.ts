/**
 * A service using the packed package: copied into a fresh npm project by test/package.test.ts, where it is
 * type-checked with tsc and run with Node on two SQLite shards in the working directory. It prints one JSON line.
 */
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, ShardingError, type ShardChooser } from 'mikro-orm-sharding';
import { mergeSorted, sumCounts } from 'mikro-orm-sharding/merge';
import { createTestShards } from 'mikro-orm-sharding/testing';
import { withShardedContext } from 'mikro-orm-sharding/http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

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
    author: () => p.manyToOne(Author),
  },
});
class Book extends BookSchema.class {}
BookSchema.setClass(Book);

const authorShard = (id: number) => `s${id % 2}`;
const shardChooser: ShardChooser = ({ entity, em }) =>
  entity instanceof Book ? (em.shardOf(entity.author) ?? authorShard(entity.author.id)) : authorShard((entity as Author).id);

await using orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Author, Book],
  shards: { s0: { dbName: 's0.db' }, s1: { dbName: 's1.db' } },
  shardChooser,
  idChooser: ({ entityName, id }) => (entityName === 'Author' ? [authorShard(Number(id))] : ['s0', 's1']),
});
await orm.schema.create();

const em = orm.em.fork();
for (const [id, name] of [
  [1, 'Ursula'],
  [2, 'Octavia'],
  [3, 'Ted'],
] as const) {
  const author = em.create(Author, { id, name });
  em.create(Book, { id: id * 10, title: `${name}'s book`, author });
}
await em.flush();

const read = orm.em.fork();
const titles = (await read.find(Book, {}, { orderBy: { title: 'desc' }, limit: 2, offset: 1 })).map(book => book.title);
const perShard = await Promise.all(orm.shardIds.map(shard => read.count(Book, {}, { shard })));
const author = await read.findOneOrFail(Author, 3, { populate: ['books'] });
const merged = mergeSorted(
  [
    [1, 4],
    [2, 3],
  ],
  (a, b) => a - b,
).map(entry => entry.row);

let refused = '';
try {
  // A shard id computed at run time is checked at run time (a literal one would not compile).
  await read.find(Book, {}, { shard: String('nowhere') as 's0' });
} catch (error) {
  if (error instanceof ShardingError) refused = error.code;
}

// The testing subpath: fresh shards in a temp folder, removed again.
let testShards: number;
{
  await using fresh = await createTestShards({ driver: 'sqlite', count: 3 });
  await using testOrm = await ShardedMikroORM.init({ ...fresh.options, entities: [Author, Book], shardChooser: () => 's2' });
  await testOrm.schema.create();
  testShards = testOrm.shardIds.length;
}

// The http subpath, without Express or Fastify installed: a request pinned to s1 by its header.
const server = createServer(
  withShardedContext(orm, async (_req, res) => res.end(JSON.stringify({ pinned: orm.em.pinnedShard, authors: await orm.em.count(Author) })), {
    shardResolver: req => req.headers['x-shard'] as string | undefined,
  }),
);
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers: { 'x-shard': 's1' } });
const request = (await response.json()) as { pinned: string; authors: number };
await new Promise(resolve => server.close(resolve));

console.log(
  JSON.stringify({
    request,
    titles,
    perShard,
    total: sumCounts(perShard),
    author: { name: author.name, shard: read.shardOf(author), books: author.books.getItems().map(book => book.id) },
    merged,
    refused,
    testShards,
  }),
);
