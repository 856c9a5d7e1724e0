/**
 * Flask-SQLAlchemy's binds of seed 001 ("Automap multiple databases with Flask-SQLAlchemy"): `table1` in the main
 * database, `table2` with `__bind_key__ = 'otherDB'` in a second one, both tables already there (the seed reflects
 * them with automap).
 *
 * Run: pnpm example flask-binds
 */
import { mkdtempDisposableSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM } from 'mikro-orm-sharding';

// MikroORM does not reflect tables at run time, as automap does: an entity is declared for each existing table
// (by hand, or with MikroORM's entity generator), and the check below proves that it fits. These fit the tables
// SQLAlchemy's create_all() made: `id INTEGER NOT NULL ... PRIMARY KEY (id)`, without AUTOINCREMENT.
const Table1Schema = defineEntity({
  name: 'Table1',
  tableName: 'table1',
  properties: { id: p.integer().primary().autoincrement(false), name: p.string().length(50) },
});
class Table1 extends Table1Schema.class {}
Table1Schema.setClass(Table1);

const Table2Schema = defineEntity({
  name: 'Table2',
  tableName: 'table2',
  properties: { id: p.integer().primary().autoincrement(false), title: p.string().length(50) },
});
class Table2 extends Table2Schema.class {}
Table2Schema.setClass(Table2);

using folder = mkdtempDisposableSync(join(tmpdir(), 'flask-binds-'));
await using orm = await ShardedMikroORM.init({
  driver: SqliteDriver,
  entities: [Table1, Table2],
  shards: {
    default: { dbName: join(folder.path, 'db1.db') }, // SQLALCHEMY_DATABASE_URI
    otherDB: { dbName: join(folder.path, 'db2.db') }, // SQLALCHEMY_BINDS = { 'otherDB': ... }
  },
  binds: { Table2: 'otherDB' }, // Table2's __bind_key__
  defaultBind: 'default', // every other entity: the main database. No chooser is needed.
});

// Stand-ins for the two existing databases, as the seed's application made them.
await orm.shard('default').em.getConnection().execute('CREATE TABLE table1 (id INTEGER NOT NULL, name VARCHAR(50) NOT NULL, PRIMARY KEY (id))');
await orm.shard('otherDB').em.getConnection().execute('CREATE TABLE table2 (id INTEGER NOT NULL, title VARCHAR(50) NOT NULL, PRIMARY KEY (id))');

// Does each entity fit its database's table? MikroORM's schema diff, on each database: empty means yes. Each
// database is compared with its own entities only: otherDB is not asked for table1.
for (const db of orm.shardIds) {
  const diff = await orm.shard(db).schema.getUpdateSchemaSQL();
  console.log(`${db}: ${diff === '' ? 'the entities fit the existing tables' : `differs:\n${diff}`}`);
}

const em = orm.em.fork();
em.create(Table1, { id: 1, name: 'first' });
em.create(Table2, { id: 1, title: 'second' }); // same id, other database
await em.flush(); // one flush, each row to its own database

const reader = orm.em.fork();
const one = await reader.findOneOrFail(Table1, 1); // reads db1 only
const two = await reader.findOneOrFail(Table2, 1); // reads db2 only: the bind routes it
console.log(`Table1 #1 "${one.name}" from ${reader.shardOf(one)}, Table2 #1 "${two.title}" from ${reader.shardOf(two)}`);
console.log(`Table2 rows: ${await reader.count(Table2)}`);
