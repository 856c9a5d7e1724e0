/**
 * The two databases of seed 000 ("Using Multiple Databases In TurboGears"): `Spam` on the first database, `Eggs` on
 * the second, one entity manager for both (where TurboGears needs DBSession and DBSession2), and each database with
 * its own migrations folder (the seed's migration1/ and migration2/ for alembic).
 *
 * Run: pnpm example two-databases
 */
import { mkdtempDisposableSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineEntity, p, UniqueConstraintViolationException } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { defineShardingConfig, ShardedMikroORM, ShardingError } from 'mikro-orm-sharding';
import { Eggs, Spam } from './entities.ts';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
using folder = mkdtempDisposableSync(join(tmpdir(), 'two-databases-'));

const options = defineShardingConfig({
  driver: SqliteDriver,
  entities: [Spam, Eggs],
  extensions: [Migrator],
  shards: {
    // sqlalchemy.first.url and sqlalchemy.second.url. Each database has its own migrations folder, written by
    // `orm.migrator.create()` from that database's entities. `snapshot: false` diffs new migrations against the
    // database instead of keeping .snapshot-*.json files beside them.
    first: { dbName: join(folder.path, 'database_1.db'), migrations: { path: here('./migration1'), snapshot: false, silent: true } },
    second: { dbName: join(folder.path, 'database_2.db'), migrations: { path: here('./migration2'), snapshot: false, silent: true } },
  },
  // DeclarativeBase2: Eggs lives on the second database; every other entity on the first. No chooser is needed.
  binds: { Eggs: 'second' },
  defaultBind: 'first',
});

await using orm = await ShardedMikroORM.init(options);

// `gearbox migrate -l migration1 db_version`, for both databases at once.
const before = await orm.migrator.status();
for (const { shard, last, pending } of before.shards) console.log(`${shard}: at ${last ?? 'no migration'}, ${pending.length} pending`);

// `alembic upgrade head` on each database, from its own folder (`{ shards: ['second'] }` would migrate one only).
for (const { shard, status, migrations } of await orm.migrator.up()) {
  console.log(`${shard}: ${status}, applied ${migrations.join(', ')}`);
}
const after = await orm.migrator.status();
console.log(`up to date: ${after.upToDate}; ${after.shards.map(({ shard, last }) => `${shard} at ${last}`).join(', ')}`);

// websetup's setup_app: populate each database; one flush writes both.
async function setupApp() {
  const em = orm.em.fork();
  em.create(Spam, { id: 1, variety: 'Classic' });
  em.create(Spam, { id: 2, variety: 'Golden Honey Grail', origin: 'Camelot' });
  em.create(Eggs, { id: 1, pkgQty: 12 });
  em.create(Eggs, { id: 2, pkgQty: 6 });
  try {
    await em.flush();
    console.log('Successfully setup');
  } catch (error) {
    // The seed's `except IntegrityError`: MikroORM's own exception class, whichever database failed.
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    console.log('Warning, there was a problem adding your data, it may have already been added');
  }
}
await setupApp();
await setupApp(); // the rows are there already: the flush fails, and writes nothing on either database

const em = orm.em.fork();
const spam = await em.find(Spam, {}, { orderBy: { id: 'asc' } }); // reads database_1 only
const eggs = await em.find(Eggs, {}, { orderBy: { id: 'asc' } }); // reads database_2 only
console.log(`spam (${em.shardOf(spam[0]!)}): ${spam.map(s => s.variety).join(', ')}`);
console.log(`eggs (${em.shardOf(eggs[0]!)}): ${eggs.map(e => e.pkgQty).join(', ')}`);

// "you won't be able to create relations (foreign keys) between tables on two different databases": init() says so.
const BreakfastSchema = defineEntity({
  name: 'Breakfast',
  properties: { id: p.integer().primary(), spam: () => p.manyToOne(Spam), eggs: () => p.manyToOne(Eggs) },
});
class Breakfast extends BreakfastSchema.class {}
BreakfastSchema.setClass(Breakfast);
const refused = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Spam, Eggs, Breakfast],
  shards: { first: { dbName: ':memory:' }, second: { dbName: ':memory:' } },
  binds: { Eggs: 'second', Breakfast: 'second' }, // Breakfast.spam would point into the first database
  defaultBind: 'first',
}).catch((error: unknown) => error);
console.log(`a relation across the databases: ${refused instanceof ShardingError ? refused.code : refused}`);
