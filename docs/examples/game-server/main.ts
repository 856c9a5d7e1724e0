/**
 * The game server of seed 001 ("SQLAlchemy - Multiple Database Issues"): ten databases, a user's rows in database
 * `user_id % 10`, written by many concurrent workers at once.
 *
 * Run: pnpm example game-server
 */
import { mkdtempDisposableSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type ShardStrategy } from 'mikro-orm-sharding';

// The seed's BuddyModel. Its id is each database's own autoincrement, so ids repeat across databases: a buddy is
// found by (userId, id), never by id alone.
const BuddySchema = defineEntity({
  name: 'Buddy',
  tableName: 'test_x',
  properties: {
    id: p.integer().primary().autoincrement(),
    userId: p.integer(),
    value: p.string().length(50),
  },
});
class Buddy extends BuddySchema.class {}
BuddySchema.setClass(Buddy);

const databases = Array.from({ length: 10 }, (_, i) => `db${i}`);

// The seed's `get_engine(user_id)`: `user_id % 10`, as a shard strategy, so that the rows of existing databases stay
// where they are. A new fleet would rather use `hash({ shards: databases })`, which spreads any key evenly and can
// move buckets to a new database later (docs/strategies.md).
const byUserId: ShardStrategy = {
  kind: 'modulo',
  shards: databases,
  shardFor: userId => databases[Number(userId) % databases.length],
};

using folder = mkdtempDisposableSync(join(tmpdir(), 'game-server-')); // removed when the script ends
await using orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Buddy],
  shards: Object.fromEntries(databases.map((db, i) => [db, { dbName: join(folder.path, `test${i}.db`) }])),
  // One declaration instead of `get_engine()` at every call site: new buddies go to their user's database, and a
  // query whose condition names the user reads that database alone.
  shardBy: { Buddy: { key: 'userId', strategy: byUserId } },
});
await orm.schema.create();

// The seed's threads: 10 workers at once, each saving one buddy for each of the users 100 to 119. Every unit of
// work has its own entity manager (`orm.em.fork()`), as every thread needs its own session; the fleet is shared.
const WORKERS = 10;
const users = Array.from({ length: 20 }, (_, i) => 100 + i);
await Promise.all(
  Array.from({ length: WORKERS }, async (_, worker) => {
    for (const userId of users) {
      const em = orm.em.fork();
      em.create(Buddy, { userId, value: `user_id: ${userId} (worker ${worker})` });
      await em.flush();
    }
  }),
);

const em = orm.em.fork();
// Reads database 4 only: the condition names the user, and 114 % 10 is 4.
const buddies = await em.find(Buddy, { userId: 114 }, { orderBy: { id: 'asc' } });
console.log(`user 114 has ${buddies.length} buddies, all in ${em.shardOf(buddies[0]!)}`);
const sparta = await em.findOneOrFail(Buddy, { userId: 114, id: buddies[0]!.id });
sparta.value = 'This is Sparta!! 114';
await em.flush(); // updates the row in the database it was loaded from
const reread = await orm.em.fork().findOneOrFail(Buddy, { userId: 114, id: sparta.id });
console.log(`re-read from db4: ${reread.value}`);

// Over all databases: counts added up, and one global order.
console.log(`buddies in all databases: ${await em.count(Buddy)}`);
const perDatabase = await Promise.all(databases.map(async db => `${db}=${await em.count(Buddy, {}, { shard: db })}`));
console.log(`per database: ${perDatabase.join(' ')}`);
const top = await em.find(Buddy, { value: { $like: '%(worker 0)' } }, { orderBy: { userId: 'desc' }, limit: 3 });
console.log(`worker 0, highest user ids: ${top.map(buddy => `${buddy.userId} in ${em.shardOf(buddy)}`).join(', ')}`);
