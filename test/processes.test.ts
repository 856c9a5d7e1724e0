/**
 * The fleet from several processes (seed 003's `reinit_engine`: "If your Pyramid application connects to the database
 * BEFORE a process fork, you must call pyramid_sqlassist.reinit_engine"): worker processes, forked with
 * node:child_process or node:cluster, each open their own ShardedMikroORM over the same SQLite files or PostgreSQL
 * databases and write at the same moment; the parent then counts every shard's rows with raw SQL.
 */
import { fork, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { createTestShards, type TestShards } from 'mikro-orm-sharding/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { WorkerTask } from './processes/worker.ts';
import { Author, Book, entities } from './support/entities.ts';
import { rowsPerShard, shardChooser, shardOfId } from './support/fleet.ts';
import { PG_URL } from './support/topology.ts';

const WORKER = fileURLToPath(new URL('./processes/worker.ts', import.meta.url));
// process.execPath is the pinned Node 24, which runs the TypeScript worker; the condition loads the library's source.
const EXEC_ARGV = ['--conditions=@mikro-orm-sharding/source'];
const WORKERS = 3;
const AUTHORS = 20;

type Method = 'child_process' | 'cluster';

function spawn(method: Method, task: WorkerTask): ChildProcess {
  const args = [JSON.stringify(task)];
  if (method === 'child_process') {
    return fork(WORKER, args, { execPath: process.execPath, execArgv: EXEC_ARGV, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  }
  cluster.setupPrimary({ exec: WORKER, args, execArgv: EXEC_ARGV, silent: true });
  return cluster.fork().process;
}

/** Starts the workers, lets them all write at once when every one is connected, and returns what each wrote. */
async function runWorkers(method: Method, tasks: readonly WorkerTask[]): Promise<number[][]> {
  const children = tasks.map(task => spawn(method, task));
  const stderr = children.map(child => {
    let text = '';
    child.stderr?.on('data', chunk => (text += String(chunk)));
    return () => text;
  });
  const message = <T>(child: ChildProcess, i: number, key: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (key in m) {
          child.off('message', onMessage);
          resolve(m[key] as T);
        }
      };
      child.on('message', onMessage);
      child.once('exit', code => reject(new Error(`worker ${i} exited with ${code} before "${key}":\n${stderr[i]!()}`)));
    });
  const exited = children.map((child, i) =>
    new Promise<number | null>(resolve => (child.exitCode === null ? child.once('exit', resolve) : resolve(child.exitCode))).then(code => [code, i] as const),
  );
  try {
    await Promise.all(children.map((child, i) => message(child, i, 'ready')));
    const wrote = children.map((child, i) => message<number[]>(child, i, 'wrote'));
    for (const child of children) child.send('go');
    const results = await Promise.all(wrote);
    for (const [code, i] of await Promise.all(exited)) {
      expect(code, `worker ${i}: ${stderr[i]!()}`).toBe(0);
    }
    return results;
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}

describe.each([
  ['sqlite', 'child_process'],
  ['postgresql', 'child_process'],
  ['postgresql', 'cluster'],
] as const)('worker processes on %s (%s), each with its own connections', (driver, method) => {
  let shards: TestShards;

  afterAll(async () => {
    await shards?.dispose();
  });

  it('write concurrently, and every row lands once on its shard', async () => {
    shards = await createTestShards({ driver, count: 3, clientUrl: PG_URL });
    {
      await using orm = await ShardedMikroORM.init({ ...shards.options, entities, shardChooser });
      await orm.schema.create();
      if (driver === 'sqlite') {
        // Readers do not block the writer, which other processes' transactions would otherwise do (kept in the file).
        for (const id of orm.shardIds) await orm.shard(id).em.fork().getConnection().execute('pragma journal_mode = wal');
      }
    }

    const tasks = Array.from({ length: WORKERS }, (_, worker) => ({
      driver,
      clientUrl: shards.options.clientUrl,
      shards: shards.options.shards,
      worker: worker + 1,
      authors: AUTHORS,
    }));
    const wrote = await runWorkers(method, tasks);
    expect(wrote.map(ids => ids.length)).toEqual([AUTHORS, AUTHORS, AUTHORS]);

    await using orm = await ShardedMikroORM.init({ ...shards.options, entities, shardChooser });
    const expected: Record<string, number> = { s0: 0, s1: 0, s2: 0 };
    for (const id of wrote.flat()) expected[shardOfId(id)]!++;
    expect(await rowsPerShard(orm, 'author')).toEqual(expected);
    expect(await rowsPerShard(orm, 'book')).toEqual(expected);
    const em = orm.em.fork();
    expect(await em.count(Author)).toBe(WORKERS * AUTHORS);
    const books = await em.find(Book, {}, { populate: ['author'], orderBy: { id: 'asc' } });
    expect(books.map(book => book.id)).toEqual(wrote.flat().sort((a, b) => a - b));
    expect(books.every(book => book.author.id === book.id && em.shardOf(book) === shardOfId(book.id))).toBe(true);
  });
});
