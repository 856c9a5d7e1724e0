/**
 * Seed 002, Pylons' "Talking to Multiple Databases at Once": some tables always bound to one database (a general
 * database and a logging database: `sessionmaker(binds=...)`), and databases of the same structure chosen per
 * request ("a blogging app with a separate database for each blog").
 *
 * Run: pnpm example pylons
 */
import { mkdtempDisposableSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { withShardedContext } from 'mikro-orm-sharding/http';

// The general database: which blogs exist, and the database of each.
const BlogSchema = defineEntity({
  name: 'Blog',
  properties: { slug: p.string().primary(), database: p.string() },
});
class Blog extends BlogSchema.class {}
BlogSchema.setClass(Blog);

// The logging database.
const LogEntrySchema = defineEntity({
  name: 'LogEntry',
  properties: { id: p.integer().primary(), message: p.string(), at: p.datetime().onCreate(() => new Date()) },
});
class LogEntry extends LogEntrySchema.class {}
LogEntrySchema.setClass(LogEntry);

// Every blog's database has the same table.
const PostSchema = defineEntity({
  name: 'Post',
  properties: { id: p.integer().primary(), title: p.string() },
});
class Post extends PostSchema.class {}
PostSchema.setClass(Post);

using folder = mkdtempDisposableSync(join(tmpdir(), 'pylons-'));
const database = (name: string) => ({ dbName: join(folder.path, `${name}.db`) });
await using orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Blog, LogEntry, Post],
  // sqlalchemy.default.url, sqlalchemy.log.url, and one database per blog.
  shards: { default: database('default'), log: database('log'), blog_alice: database('blog_alice'), blog_bob: database('blog_bob') },
  // Per-table binds. The blog databases get the entities no bind names: Post.
  binds: { Blog: 'default', LogEntry: 'log' },
  // A post goes to the database of the request's blog (the pin below). Outside a request, code names the blog.
  shardChooser: () => {
    throw new Error('a post belongs to a blog: write it in a request for that blog, or through orm.em.fork({ shard })');
  },
});
await orm.schema.create();
const setup = orm.em.fork();
setup.create(Blog, { slug: 'alice', database: 'blog_alice' });
setup.create(Blog, { slug: 'bob', database: 'blog_bob' });
await setup.flush();

/** Thrown for an unknown blog: the server answers 404. */
class NoSuchBlog extends Error {}

// The seed's base controller choosing the bindings per request: here the first path segment names the blog, and the
// general database says which database holds it. The request's entity manager is then pinned to that database.
async function shardResolver(request: IncomingMessage) {
  const slug = request.url?.split('/')[1] ?? '';
  const blog = await orm.em.fork().findOne(Blog, slug);
  if (!blog) throw new NoSuchBlog(slug);
  return blog.database;
}

const server = createServer(
  withShardedContext(
    orm,
    async (request, response) => {
      // Inside the request, the global orm.em is this request's own entity manager, pinned to its blog's database.
      if (request.method === 'POST') {
        let body = '';
        for await (const chunk of request) body += chunk;
        const post = orm.em.create(Post, { title: JSON.parse(body).title }); // the blog's database
        orm.em.create(LogEntry, { message: `new post on ${request.url}` }); // the log database: bound, whatever the pin
        await orm.em.flush();
        response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: post.id, database: orm.em.shardOf(post) }));
      } else {
        const posts = await orm.em.find(Post, {}, { orderBy: { id: 'asc' } }); // the blog's database only
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(posts.map(post => post.title)));
      }
    },
    {
      shardResolver,
      onError: (error, _request, response) => response.writeHead(error instanceof NoSuchBlog ? 404 : 500).end(),
    },
  ),
);
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

try {
  const calls: [string, string, string?][] = [
    ['POST', '/alice/posts', 'Hello from Alice'],
    ['POST', '/bob/posts', 'Bob here'],
    ['POST', '/alice/posts', 'Alice again'],
    ['GET', '/alice/posts'],
    ['GET', '/bob/posts'],
    ['GET', '/carol/posts'],
  ];
  for (const [method, path, title] of calls) {
    const response = await fetch(base + path, { method, body: title === undefined ? undefined : JSON.stringify({ title }) });
    console.log(`${method} ${path} -> ${response.status} ${await response.text()}`.trim());
  }
} finally {
  server.close();
}

// Outside any request (a cron job, a script): pin an entity manager yourself, one per blog.
for (const blog of ['blog_alice', 'blog_bob'] as const) {
  console.log(`posts in ${blog}: ${await orm.em.fork({ shard: blog }).count(Post)}`);
}
console.log(`lines in the log: ${await orm.em.fork().count(LogEntry)}`);
