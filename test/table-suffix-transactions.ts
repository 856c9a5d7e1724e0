/**
 * Table-suffix shards in transactions and with init()'s shared options, per driver: a `'single'` transaction counts
 * the shards of one database as one (and still refuses a second database), a shared `discovery` hook, schema
 * generator option and subscriber run on these shards beside their own, their transaction events are those of plain
 * MikroORM's one transaction, and a begin stopped before the transaction exists leaves no SQLite writer waiting.
 */
import { EventType, MikroORM, type EventSubscriber, type TransactionEventArgs } from '@mikro-orm/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sharedTablesShard, ShardedMikroORM, tableSuffix, tableSuffixShard, type ShardOptions } from 'mikro-orm-sharding';
import { Album, Photo } from './support/photos.ts';
import { refusal } from './support/refusal.ts';
import { adminQuery, type Topology } from './support/topology.ts';

const TRANSACTION_EVENTS = [
  EventType.beforeTransactionStart,
  EventType.afterTransactionStart,
  EventType.beforeTransactionCommit,
  EventType.afterTransactionCommit,
  EventType.beforeTransactionRollback,
  EventType.afterTransactionRollback,
] as const;

/** Records the transaction events it sees, and the flushes. */
class Recorder implements EventSubscriber {
  readonly events: string[] = [];
  constructor() {
    for (const event of TRANSACTION_EVENTS) {
      Object.assign(this, {
        [event]: (args: TransactionEventArgs) => {
          this.events.push(`${event}${args.transaction?.savepointName ? ' (savepoint)' : ''}`);
          if (event === EventType.beforeTransactionCommit) {
            this.changeSetsAtCommit.push(args.uow?.getChangeSets().length ?? 0);
          }
        },
      });
    }
  }
  /** The change sets left in the unit of work at each `beforeTransactionCommit`. */
  readonly changeSetsAtCommit: number[] = [];
  afterFlush(): void {
    this.events.push('afterFlush');
  }
  take(): string[] {
    return this.events.splice(0);
  }
}

let n = 0;
const photo = (albumKey: string) => ({ id: ++n, albumKey, title: `photo ${n}`, takenOn: '2024-01-01', likes: n });

export function describeTableSuffixTransactions(makeTopology: () => Topology): void {
  let topology: Topology;
  let one: ShardOptions;
  let two: ShardOptions;
  let orm: ShardedMikroORM;
  let plain: MikroORM;
  const recorder = new Recorder();
  const plainRecorder = new Recorder();
  const discovered: string[] = [];

  async function count(shard: string, table: string): Promise<number> {
    const [row] = await orm.shard(shard).em.getConnection().execute<{ n: number | string }[]>(`select count(*) as n from ${table}`);
    return Number(row!.n);
  }
  const counts = () => Promise.all([count('a', 'photo_a'), count('b', 'photo_b'), count('c', 'photo_c'), count('main', 'album')]);

  beforeAll(async () => {
    topology = makeTopology();
    one = topology.database('one');
    two = topology.database('two');
    if (topology.name === 'postgresql') {
      await adminQuery([`create database "${one.dbName}"`, `create database "${two.dbName}"`]);
    }
    orm = await ShardedMikroORM.init({
      ...topology.shared,
      // Shared options these shards compose with their own.
      discovery: { onMetadata: meta => void discovered.push(`${meta.className} ${meta.tableName}`) },
      schemaGenerator: { skipTables: ['legacy'] },
      subscribers: [recorder],
      shards: {
        main: sharedTablesShard(one, { entities: [Album] }),
        a: tableSuffixShard(one, { entities: [Photo], suffix: 'a' }),
        b: tableSuffixShard(one, { entities: [Photo], suffix: 'b' }),
        // The same kind of shard, on another database.
        c: tableSuffixShard(two, { entities: [Photo], suffix: 'c' }),
      },
      shardBy: { Photo: { key: 'albumKey', strategy: tableSuffix({ shards: ['a', 'b', 'c'], suffixOf: key => String(key) }) } },
      binds: { Album: 'main' },
      transactionMode: 'single',
    });
    await orm.schema.create();
    plain = await MikroORM.init({ ...topology.shared, ...topology.database('plain'), entities: [Photo, Album], subscribers: [plainRecorder] });
    await plain.schema.ensureDatabase();
    await plain.schema.create();
  });

  afterAll(async () => {
    await orm?.close(true);
    await plain?.close(true);
    await topology?.dispose();
  });

  it("runs init()'s shared discovery hook, schema generator options and subscribers on these shards, with their own", async () => {
    // The user's onMetadata ran on every shard, before the rename (which still happened: the tables exist).
    expect(discovered.filter(line => line.startsWith('Photo')).sort()).toEqual(['Photo photo', 'Photo photo', 'Photo photo']);
    expect(discovered).toContain('Album album');
    expect(await counts()).toEqual([0, 0, 0, 0]);
    for (const id of orm.shardIds) {
      const config = orm.shard(id).config;
      expect(config.get('schemaGenerator').skipTables).toContain('legacy');
      // Ours still there: the schema generator sees only the shard's own tables.
      expect(await orm.shard(id).schema.getUpdateSchemaSQL()).toBe('');
      expect(orm.shard(id).em.getEventManager().getSubscribers()).toContain(recorder);
    }
    recorder.take();
    const em = orm.em.fork();
    em.create(Photo, photo('a'));
    await em.flush();
    expect(recorder.take()).toContain('afterFlush');
  });

  it("lets a 'single' transaction write several shards of one database, as one transaction", async () => {
    const before = await counts();
    const em = orm.em.fork();
    em.create(Photo, photo('a'));
    em.create(Photo, photo('b'));
    em.create(Album, { key: `album ${++n}`, title: 'one database' });
    await em.flush();
    expect(await counts()).toEqual([before[0]! + 1, before[1]! + 1, before[2], before[3]! + 1]);
    // A failure rolls back every shard of the database.
    const failed = await orm.em
      .fork()
      .transactional(async tx => {
        tx.create(Photo, photo('a'));
        tx.create(Photo, photo('b'));
        await tx.flush();
        expect(await tx.count(Photo, { albumKey: { $in: ['a', 'b'] } })).toBe(before[0]! + before[1]! + 4);
        throw new Error('rolled back');
      })
      .catch((error: unknown) => error as Error);
    expect(failed.message).toBe('rolled back');
    expect(await counts()).toEqual([before[0]! + 1, before[1]! + 1, before[2], before[3]! + 1]);
  });

  it("reads every joined shard's uncommitted writes inside the transaction, over several shards at once", async () => {
    // Regression: on SQLite the fan-out read of a shard that joined another's transaction ran on the shard's own
    // connection, outside the transaction, and missed its writes.
    const before = await counts();
    const failed = await orm.em
      .fork()
      .transactional(async tx => {
        const written = [tx.create(Photo, photo('a')), tx.create(Photo, photo('b'))];
        await tx.flush();
        const where = { albumKey: { $in: ['a', 'b'] } };
        const ids = (await tx.find(Photo, where, { orderBy: { id: 'asc' } })).map(row => row.id);
        expect(ids).toHaveLength(before[0]! + before[1]! + 2);
        expect(ids).toEqual(expect.arrayContaining(written.map(row => row.id)));
        expect(await tx.count(Photo, where)).toBe(ids.length);
        expect(await tx.findAndCount(Photo, where, { limit: 1, orderBy: { id: 'desc' } })).toEqual([[written[1]], ids.length]);
        throw new Error('rolled back');
      })
      .catch((error: unknown) => error as Error);
    expect(failed.message).toBe('rolled back');
    expect(await counts()).toEqual(before);
  });

  it("still refuses a 'single' transaction writing shards of two databases, with nothing written", async () => {
    const before = await counts();
    const em = orm.em.fork();
    em.create(Photo, photo('a'));
    em.create(Photo, photo('c'));
    const error = await refusal(() => em.flush());
    expect(error.code).toBe('TRANSACTION_SPANS_SHARDS');
    expect(error.message).toMatch(/"a".*"c"|"c".*"a"/);
    expect(await counts()).toEqual(before);
    const inside = await refusal(() =>
      orm.em.fork().transactional(async tx => {
        await tx.find(Photo, { albumKey: 'b' });
        await tx.find(Photo, { albumKey: 'c' });
      }),
    );
    expect(inside.code).toBe('TRANSACTION_SPANS_SHARDS');
  });

  it("fires plain MikroORM's transaction events for one transaction on one database", async () => {
    // Plain MikroORM, one database: one flush writing two rows, then a transaction that commits and one that fails.
    const scenarios = async (em: MikroORM['em'], take: () => string[]) => {
      const seen: string[][] = [];
      em.create(Photo, photo('a'));
      em.create(Photo, photo('b'));
      await em.flush();
      seen.push(take());
      await em.fork().transactional(async tx => {
        tx.create(Photo, photo('a'));
        tx.create(Photo, photo('b'));
      });
      seen.push(take());
      await em
        .fork()
        .transactional(async tx => {
          tx.create(Photo, photo('a'));
          tx.create(Photo, photo('b'));
          await tx.flush();
          throw new Error('rolled back');
        })
        .catch(() => undefined);
      seen.push(take());
      // Flushes run per shard: compare the transaction events.
      return seen.map(events => events.filter(event => event !== 'afterFlush'));
    };
    recorder.take();
    plainRecorder.take();
    const expected = await scenarios(plain.em.fork(), () => plainRecorder.take());
    expect(expected[0]).toEqual(['beforeTransactionStart', 'afterTransactionStart', 'beforeTransactionCommit', 'afterTransactionCommit']);
    // The sharded entity manager has MikroORM's signatures for what the scenarios call.
    recorder.changeSetsAtCommit.length = 0;
    expect(await scenarios(orm.em.fork() as unknown as MikroORM['em'], () => recorder.take())).toEqual(expected);
    // Documented difference: by the commit events every fork has flushed, and its change sets are gone.
    expect(plainRecorder.changeSetsAtCommit[0]).toBe(2);
    expect(recorder.changeSetsAtCommit).toEqual([0, 0]);
  });

  it('leaves no writer waiting after a begin stopped before the transaction existed', async () => {
    const before = await counts();
    let stop = true;
    // Registered after the shards' own subscribers: it runs after them, as a failing BEGIN would.
    orm
      .shard('a')
      .em.getEventManager()
      .registerSubscriber({
        beforeTransactionStart() {
          if (stop) {
            stop = false;
            throw new Error('begin stopped');
          }
        },
      });
    const em = orm.em.fork();
    em.create(Photo, photo('a'));
    await expect(em.flush()).rejects.toThrow('begin stopped');
    expect(await counts()).toEqual(before);
    // Writers of the file's shards, at once: each gets its turn.
    await Promise.all(
      ['a', 'b', 'a', 'main'].map(async key => {
        const writer = orm.em.fork();
        if (key === 'main') {
          writer.create(Album, { key: `album ${++n}`, title: 'after' });
        } else {
          writer.create(Photo, photo(key));
        }
        await writer.flush();
      }),
    );
    expect(await counts()).toEqual([before[0]! + 2, before[1]! + 1, before[2], before[3]! + 1]);
  });
}
