/**
 * Seed 004, pyramid_sqlalchemy's "Multiple databases" and "Two-phase transactions": users in the default database,
 * transactions in a data warehouse, a purchase that writes both under two-phase commit. The fixture part of the seed
 * (`sql_session_fixture`) is warehouse.test.ts, next to this file.
 *
 * Run: pnpm example warehouse   (PostgreSQL at PG_URL, default postgresql://postgres@127.0.0.1:5432)
 */
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { PG_URL, scratch } from '../support/postgres.ts';
import { latestTransaction, purchase, routing, Transaction, User } from './app.ts';

await using server = await scratch(['myapp', 'warehouse']);
await using orm = await ShardedMikroORM.init({
  ...routing,
  driver: PostgreSqlDriver,
  // bind_connection(create_engine('postgresql:///myapp')) and bind_connection(..., 'warehouse')
  clientUrl: PG_URL,
  shards: { default: { dbName: server.databases.myapp }, warehouse: { dbName: server.databases.warehouse } },
  pool: { min: 0, max: 2 },
});
await orm.schema.create(); // `user` in myapp, `transaction` in the warehouse

const setup = orm.em.fork();
setup.create(User, { id: 1, name: 'ann', balance: 100 });
await setup.flush();

await purchase(orm.em.fork(), 1, 30, new Date('2025-03-01T10:00:00Z'));
await purchase(orm.em.fork(), 1, 50, new Date('2025-03-02T10:00:00Z'));
const refused = await purchase(orm.em.fork(), 1, 40).catch((error: Error) => error.message);
console.log(`third purchase: ${refused}`); // rolled back on both databases

const em = orm.em.fork();
const latest = await latestTransaction(em);
console.log(`latest transaction: ${latest?.amount} at ${latest?.timestamp.toISOString()}, from ${latest && em.shardOf(latest)}`);
const ann = await em.findOneOrFail(User, 1);
console.log(`ann's balance: ${ann.balance}, transactions: ${await em.count(Transaction)}`);

// get_sql_session('warehouse'): that database's own MikroORM entity manager, for what runs on one database only.
const [sum] = await em.on('warehouse').getConnection().execute<{ total: string }[]>('select sum(amount) as total from "transaction"');
console.log(`sum in the warehouse: ${sum?.total}`);

// Nothing is left prepared; after a crash between PREPARE and COMMIT, init() (or orm.recover()) finishes the job.
const report = await orm.recover();
console.log(`recovery: ${report.committed.length} committed, ${report.rolledBack.length} rolled back, ${report.failed.length} failed`);
