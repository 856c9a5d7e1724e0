/**
 * One worker process of test/processes.test.ts: it opens its OWN ShardedMikroORM (its own connections; nothing is
 * inherited from the parent), says `ready`, waits for `go`, writes its authors and books, and reports what it wrote.
 * Started with `--conditions=@mikro-orm-sharding/source` on the pinned Node 24, which runs this TypeScript file.
 */
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type ShardOptions } from 'mikro-orm-sharding';
import { Author, Book, entities } from '../support/entities.ts';
import { shardChooser } from '../support/fleet.ts';

export interface WorkerTask {
  readonly driver: 'sqlite' | 'postgresql';
  readonly clientUrl?: string;
  readonly shards: Record<string, ShardOptions>;
  readonly worker: number;
  readonly authors: number;
}

const task = JSON.parse(process.argv[2]!) as WorkerTask;
const send = (message: unknown) => new Promise<void>(resolve => process.send!(message, () => resolve()));

const driver: ShardOptions['driver'] = task.driver === 'sqlite' ? SqliteDriver : PostgreSqlDriver;
await using orm = await ShardedMikroORM.init({
  driver,
  ...(task.clientUrl ? { clientUrl: task.clientUrl } : {}),
  // Several processes write one SQLite file: wait for its lock instead of failing at once.
  ...(task.driver === 'sqlite' ? { driverOptions: { timeout: 30_000 } } : {}),
  shards: task.shards,
  entities,
  shardChooser,
});
await send({ ready: process.pid });
await new Promise(resolve => process.once('message', resolve));

const ids: number[] = [];
for (let i = 0; i < task.authors; i += 2) {
  // Two authors per flush, usually on two shards: each flush writes to several databases at once.
  const em = orm.em.fork();
  for (const id of [task.worker * 1000 + i, task.worker * 1000 + i + 1]) {
    const author = em.create(Author, { id, name: `w${task.worker}-${id}` });
    em.create(Book, { id, title: `book of ${id}`, author });
    ids.push(id);
  }
  await em.flush();
}
await send({ wrote: ids });
process.disconnect();
