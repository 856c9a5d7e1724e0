/**
 * Hot and archive databases of seed 001 ("SQLAlchemy transparent access to same table accross databases"): two
 * databases with the same table; new rows always go to `hot`, `archive` is only read, and a lookup by primary key or
 * a query searches both without the calling code knowing there are two.
 *
 * Run: pnpm example hot-archive
 */
import { mkdtempDisposableSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, ShardingError } from 'mikro-orm-sharding';

const OrderSchema = defineEntity({
  name: 'Order',
  tableName: 'orders',
  properties: {
    // Assigned, not autoincremented: a row keeps its id when it moves to the archive, so ids never collide.
    id: p.integer().primary().autoincrement(false),
    customer: p.string(),
    total: p.integer(),
    placedAt: p.datetime(),
  },
});
class Order extends OrderSchema.class {}
OrderSchema.setClass(Order);

using folder = mkdtempDisposableSync(join(tmpdir(), 'hot-archive-'));
const files = { hot: join(folder.path, 'db1-hot.db'), archive: join(folder.path, 'db2-archive.db') };

/** The one routing both fleets share: the seed's shard_chooser, id_chooser and query_chooser. */
const open = (archive: { readOnly: boolean }) =>
  ShardedMikroORM.init({
    driver: SqliteDriver,
    entities: [Order],
    shards: { hot: { dbName: files.hot }, archive: { dbName: files.archive, ...archive } },
    shardChooser: () => 'hot', // every new row goes to db1
    idChooser: () => ['hot', 'archive'], // a primary key is searched in db1 first, then db2
    // queryChooser left out: queries read both databases and merge the answers
  });

// The archiving job opens the archive writable; the application never does.
await using archiver = await open({ readOnly: false });
await archiver.schema.create();
const history = archiver.em.fork();
for (let id = 1; id <= 6; id++) {
  history.create(Order, { id, customer: id % 2 ? 'ann' : 'bob', total: id * 10, placedAt: new Date(Date.UTC(2023, id, 1)) }, { shard: 'archive' });
}
await history.flush();

// The application: `readOnly` on the archive, so no code path can write there by mistake.
await using orm = await open({ readOnly: true });
const em = orm.em.fork();
em.create(Order, { id: 101, customer: 'ann', total: 250, placedAt: new Date(Date.UTC(2025, 0, 5)) });
em.create(Order, { id: 102, customer: 'bob', total: 80, placedAt: new Date(Date.UTC(2025, 1, 9)) });
await em.flush(); // both in hot: the shard chooser always says so

const reader = orm.em.fork();
for (const id of [101, 3]) {
  const order = await reader.findOneOrFail(Order, id);
  console.log(`order ${id}: ${order.customer}, ${order.total}, in ${reader.shardOf(order)}`);
}
const anns = await reader.find(Order, { customer: 'ann' }, { orderBy: { placedAt: 'desc' }, limit: 3 });
console.log(`ann's last 3 orders: ${anns.map(order => `${order.id} (${reader.shardOf(order)})`).join(', ')}`);
console.log(`orders in both databases: ${await reader.count(Order)}`);

// "db2 is basically read only": a write routed there is refused before anything is written, on any database.
const mistake = orm.em.fork();
const old = await mistake.findOneOrFail(Order, 1);
old.total = 0;
mistake.create(Order, { id: 103, customer: 'cid', total: 5, placedAt: new Date() });
const refused = await mistake.flush().catch((error: unknown) => error);
console.log(`changing an archived order: ${refused instanceof ShardingError ? refused.code : refused}`);
console.log(`order 103 was not written either: ${(await orm.em.fork().findOne(Order, 103)) === null}`);

// The nightly job moves old orders out of hot, in one transaction over both databases. Mode 'multi' (the default)
// commits the databases in the order the transaction first touched them, so it begins on the archive first: a crash
// between the two commits leaves a row in both databases, never in none, and the id chooser then finds the hot copy.
const cutoff = new Date(Date.UTC(2025, 1, 1));
await archiver.em.fork().transactional(async tx => {
  await tx.enlist('archive');
  const due = await tx.find(Order, { placedAt: { $lt: cutoff } }, { shard: 'hot' });
  await tx.insertMany(
    Order,
    due.map(({ id, customer, total, placedAt }) => ({ id, customer, total, placedAt })),
    { shard: 'archive' },
  );
  await tx.nativeDelete(Order, { id: due.map(order => order.id) }, { shard: 'hot' });
});
const after = orm.em.fork();
console.log(`after archiving, order 101 is in ${after.shardOf(await after.findOneOrFail(Order, 101))}`);
console.log(`hot holds ${await after.count(Order, {}, { shard: 'hot' })}, archive ${await after.count(Order, {}, { shard: 'archive' })}`);
