import { DefaultLogger, MikroORM, RequestContext, type EntityManager, type EventSubscriber, type LogContext, type LoggerOptions } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// White-box: these are not part of the library's API, so they are imported from the module itself. Each test below
// pins one MikroORM internal the library relies on; a MikroORM upgrade that changes it fails here, by name.
import {
  abortDefaultsOf,
  applyReadFilters,
  autoFlush,
  dispatchOnLoad,
  entityFromRow,
  entityHelper,
  executeLogged,
  forgetDeletionsInParent,
  helperOf,
  isDefaultOnQuery,
  managedEntities,
  managerOf,
  mergeIntoParent,
  mergeOrderBy,
  metaOf,
  nativeClientOf,
  withPoolCreatedHook,
  originalDataOf,
  adoptEntity,
  releaseEntity,
  restoreOriginalData,
  rowOf,
  entityDeclarationOf,
  keepForeignKeys,
  ormWithMetadata,
  watchConnections,
  whileBusy,
  type ConnectionWatch,
  runWithContextMap,
} from '../packages/mikro-orm-sharding/src/mikro-internals.ts';
import { introspectTables } from '../packages/mikro-orm-sharding/src/introspection/introspect.ts';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { defineEntity, p } from '@mikro-orm/core';
import { Author, entities } from './support/entities.ts';
import { topologies, type Topology } from './support/topology.ts';

const VersionedSchema = defineEntity({
  name: 'Versioned',
  properties: { id: p.integer().primary().autoincrement(false), version: p.integer().version() },
});
class Versioned extends VersionedSchema.class {}
VersionedSchema.setClass(Versioned);

const logged: LogContext[] = [];
class Recorder extends DefaultLogger {
  override logQuery(context: { query: string } & LogContext): void {
    logged.push(context);
  }
}

/** A shard's entity manager, as the library's functions take it. */
type Fork = Parameters<typeof autoFlush>[0];

const loaded: object[] = [];
const onLoad: EventSubscriber = {
  onLoad: ({ entity }) => {
    loaded.push(entity);
  },
};

describe.each(['sqlite', 'postgresql'] as const)('MikroORM internals the library relies on (%s)', driver => {
  let topology: Topology;
  let orm: MikroORM;
  const fork = () => orm.em.fork() as unknown as Fork;

  beforeAll(async () => {
    topology = topologies[driver]();
    orm = await MikroORM.init({
      ...topology.shared,
      ...topology.database('internals'),
      entities,
      loggerFactory: (options: LoggerOptions) => new Recorder(options),
      filters: { named: { cond: { name: { $ne: 'hidden' } }, default: false } },
    });
    await orm.schema.refresh();
    orm.em.getEventManager().registerSubscriber(onLoad);
    const em = fork();
    em.create(Author, { id: 1, name: 'one', born: 1970, rating: '4.50' });
    em.create(Author, { id: 2, name: 'two' });
    await em.flush();
  });

  afterAll(async () => {
    await orm?.close(true);
    await topology?.dispose();
  });

  it('entity helpers: __helper, __meta, __em and the primary key methods', async () => {
    const em = fork();
    const author = await em.findOneOrFail(Author, 1);
    expect(helperOf(author)).toBe((author as unknown as { __helper: unknown }).__helper);
    expect(helperOf({})).toBeUndefined();
    expect(metaOf(author)).toBe(orm.getMetadata().get(Author));
    expect(entityHelper(author).__meta).toBe(metaOf(author));
    expect(entityHelper(author).hasPrimaryKey()).toBe(true);
    expect(entityHelper(author).getPrimaryKey()).toBe(1);
    expect(entityHelper(author).getSerializedPrimaryKey()).toBe('1');
    expect(managerOf(author)).toBe(em);
    expect(managerOf({})).toBeUndefined();
    // An entity made without persisting belongs to no entity manager until one persists it.
    const made = em.create(Author, { id: 3, name: 'three' }, { persist: false });
    expect(managerOf(made)).toBeUndefined();
    expect(managerOf(new Author())).toBeUndefined();
  });

  it('__originalEntityData: what a loaded entity held, none for a new one', async () => {
    const em = fork();
    const author = await em.findOneOrFail(Author, 1);
    author.name = 'changed';
    expect(originalDataOf(author)).toMatchObject({ id: 1, name: 'one', born: 1970 });
    expect(originalDataOf(em.create(Author, { id: 99, name: 'new' }, { persist: false }))).toBeUndefined();
  });

  it('the identity map iterates the managed entities', async () => {
    const em = fork();
    const found = await em.find(Author, {}, { orderBy: { id: 'asc' } });
    const managed = [...managedEntities(em)];
    expect(found.length).toBeGreaterThan(0);
    expect(found.every(author => managed.includes(author))).toBe(true);
    expect([...managedEntities(fork())]).toHaveLength(0);
  });

  it('em.tryFlush: flushes pending entities of the type, not with flushMode commit', async () => {
    const em = fork();
    em.persist(em.create(Author, { id: 10, name: 'pending' }));
    await autoFlush(em, Author, 'commit');
    expect(await fork().count(Author, { id: 10 })).toBe(0);
    await autoFlush(em, Author, undefined);
    expect(await fork().count(Author, { id: 10 })).toBe(1);
  });

  it('em.applyFilters: returns the condition itself when no filter applies', async () => {
    const where = { name: 'one' };
    expect(await applyReadFilters(fork(), Author, where, undefined)).toBe(where);
    expect(await applyReadFilters(fork(), Author, where, { named: true })).not.toBe(where);
  });

  it('driver.mapResult and EntityFactory.create: a raw row becomes the managed entity em.find would make', async () => {
    const em = fork();
    const [row] = await em.getConnection().execute('select * from author where id = 1');
    const author = entityFromRow(em, Author, orm.getMetadata().get(Author), row!, undefined);
    const expected = await orm.em.fork().findOneOrFail(Author, 1);
    expect({ ...author, books: undefined }).toEqual({ ...expected, books: undefined });
    expect(typeof author.rating).toBe(typeof expected.rating);
    expect(em.getUnitOfWork().getById(Author, 1)).toBe(author);
    // Merged into the identity map: the same instance again, updated only with `refresh`.
    author.name = 'changed';
    expect(entityFromRow(em, Author, orm.getMetadata().get(Author), row!, undefined)).toBe(author);
    expect(author.name).toBe('changed');
    entityFromRow(em, Author, orm.getMetadata().get(Author), row!, true);
    expect(author.name).toBe('one');
  });

  it('uow.dispatchOnLoadEvent: fires the onLoad hooks of entities the factory made', async () => {
    const em = fork();
    const [row] = await em.getConnection().execute('select * from author where id = 2');
    loaded.length = 0;
    const author = entityFromRow(em, Author, orm.getMetadata().get(Author), row!, undefined);
    expect(loaded).toEqual([]);
    await dispatchOnLoad(em);
    expect(loaded).toEqual([author]);
  });

  it('QueryHelper.mergeOrderBy: the query order, then the entity default, the first of a key winning', () => {
    expect(mergeOrderBy({ name: 'asc' }, { id: 'desc' })).toEqual([{ name: 'asc' }, { id: 'desc' }]);
    expect(mergeOrderBy([{ id: 'asc' }], { id: 'desc' })).toEqual([{ id: 'asc' }]);
  });

  it('em.getAbortOptions: the signal a fork was made with', () => {
    const signal = new AbortController().signal;
    expect(abortDefaultsOf(fork())).toBeUndefined();
    expect(abortDefaultsOf(orm.em.fork({ signal }) as unknown as Fork)).toEqual({ signal, inflightQueryAbortStrategy: undefined });
  });

  it('Connection.executeQuery: times the query and logs it with the connection, and the error level on failure', async () => {
    const connection = fork().getConnection();
    logged.length = 0;
    const rows = await executeLogged(connection, 'select 1 -- shown', { query: 'select 1', label: 'x' }, () => [{ a: 1 }, { a: 2 }]);
    expect(rows).toEqual([{ a: 1 }, { a: 2 }]);
    expect(logged).toEqual([
      expect.objectContaining({ query: 'select 1 -- shown', label: 'x', level: 'info', results: 2, connection: expect.objectContaining({ type: 'write' }) }),
    ]);
    expect(typeof logged[0]!.took).toBe('number');
    const failure = new Error('raw');
    await expect(executeLogged(connection, 'select 2', {}, () => Promise.reject(failure))).rejects.toBe(failure);
    expect(logged[1]).toMatchObject({ query: 'select 2', level: 'error' });
  });

  it('Connection.executeQuery: hands a query slower than slowQueryThreshold to the slow-query logger', async () => {
    const connection = fork().getConnection();
    orm.config.set('slowQueryThreshold', 0);
    try {
      logged.length = 0;
      await executeLogged(connection, 'select 3', {}, () => []);
      expect(logged.map(context => context.namespace)).toEqual([undefined, 'slow-query']);
    } finally {
      orm.config.reset('slowQueryThreshold');
    }
  });

  it("onQuery's default is recognised", async () => {
    expect(isDefaultOnQuery(orm.config)).toBe(true);
    const custom = new MikroORM({ ...topology.shared, ...topology.database('internals'), entities, onQuery: sql => sql });
    expect(isDefaultOnQuery(custom.config)).toBe(false);
    await custom.close(true);
  });

  it("TransactionManager's merge: a transaction fork's entities become its parent's, the parent's own ones updated", async () => {
    const parent = fork();
    const loaded = await parent.findOneOrFail(Author, 1);
    const child = parent.fork({ clear: false, cloneEventManager: true }) as unknown as Fork;
    const created = child.create(Author, { id: 50, name: 'made in the transaction' });
    const inChild = await child.findOneOrFail(Author, 1);
    expect(inChild).toBe(loaded); // clear: false registers the parent's entities in the fork
    inChild.name = 'renamed in the transaction';
    await child.flush();
    mergeIntoParent(child as never, parent as never);
    expect(parent.getUnitOfWork(false).getById(Author, 50)).toBe(created);
    expect(loaded.name).toBe('renamed in the transaction');
    await child.nativeDelete(Author, { id: 50 });
    await child.nativeUpdate(Author, { id: 1 }, { name: 'one' });
  });

  it("TransactionManager's deletion handler: what a transaction fork deletes leaves its parent's identity map at its flush", async () => {
    const parent = fork();
    parent.create(Author, { id: 51, name: 'to delete' });
    await parent.flush();
    const child = parent.fork({ clear: false, cloneEventManager: true }) as unknown as Fork;
    forgetDeletionsInParent(child as never, parent as never);
    child.remove(child.getReference(Author, 51));
    expect(parent.getUnitOfWork(false).getById(Author, 51)).toBeDefined();
    await child.flush();
    expect(parent.getUnitOfWork(false).getById(Author, 51)).toBeUndefined();
  });

  it('EntityComparator.prepareEntity: the row an insert writes, database values by property, plus the version', async () => {
    const em = fork();
    const author = await em.findOneOrFail(Author, 1);
    const row = rowOf(em, author);
    expect(row).toMatchObject({ id: 1, name: 'one', born: 1970 });
    expect('books' in row).toBe(false); // no collections
    // Inserted as it is, it is the same row (under another key).
    await em.insertMany(Author, [{ ...row, id: 60 }] as never, { convertCustomTypes: false });
    const copy = await fork().findOneOrFail(Author, 60);
    expect([copy.name, copy.born, copy.rating]).toEqual([author.name, author.born, author.rating]);
    await em.nativeDelete(Author, { id: 60 });
    const versioned = new MikroORM({ ...topology.shared, ...topology.database('internals'), entities: [Versioned], connect: false } as never);
    const entity = versioned.em.fork().create(Versioned, { id: 1, version: 7 }, { persist: false });
    expect(rowOf(versioned.em, entity)).toEqual({ id: 1, version: 7 });
    await versioned.close(true);
  });

  it('releasing and adopting an entity: it leaves one unit of work with its changes pending, and another flushes them', async () => {
    const from = fork();
    const into = fork();
    const author = await from.findOneOrFail(Author, 2);
    const pending = from.create(Author, { id: 61, name: 'pending' });
    author.name = 'changed once';
    const before = originalDataOf(author);
    expect(releaseEntity(from, author)).toBe(true);
    expect(releaseEntity(from, pending)).toBe(true); // it was in the persist stack
    expect(from.getUnitOfWork(false).getById(Author, 2)).toBeUndefined();
    expect(from.getUnitOfWork(false).getPersistStack().has(pending)).toBe(false);
    expect(releaseEntity(from, author)).toBe(false);
    adoptEntity(into, author);
    expect(into.getUnitOfWork(false).getById(Author, 2)).toBe(author);
    expect(managerOf(author)).toBe(into);
    await from.flush(); // writes nothing of theirs
    expect((await fork().findOneOrFail(Author, 2)).name).toBe('two');
    await into.flush();
    expect((await fork().findOneOrFail(Author, 2)).name).toBe('changed once');
    // Its original data put back: the change is pending again.
    restoreOriginalData(author, before);
    into.getUnitOfWork().computeChangeSets();
    expect(
      into
        .getUnitOfWork()
        .getChangeSets()
        .map(changeSet => changeSet.payload),
    ).toEqual([{ name: 'changed once' }]);
    into.clear();
    // Adopted on behalf of another entity manager (a transaction's parent).
    adoptEntity(from, author, into);
    expect(managerOf(author)).toBe(into);
    await fork().nativeUpdate(Author, { id: 2 }, { name: 'two' });
  });

  it("RequestContext.storage: a context over a map of our own, whose get answers MikroORM's lookups by contextName", async () => {
    const own = orm.em.fork({ useContext: true });
    const asked: string[] = [];
    class Lookups extends Map<string, EntityManager> {
      override get(name: string): EntityManager | undefined {
        asked.push(name);
        return super.get(name) ?? (name === orm.em.name ? own : undefined);
      }
    }
    const map = new Lookups();
    const inside = await runWithContextMap(map, async () => {
      await Promise.resolve();
      return { map: RequestContext.currentRequestContext()?.map, context: orm.em.getContext(), named: RequestContext.getEntityManager(orm.em.name) };
    });
    expect(inside).toEqual({ map, context: own, named: own });
    expect(inside.context).toBe(own);
    expect(asked).toContain(orm.em.name);
    expect(RequestContext.currentRequestContext()).toBeUndefined();
  });

  it("getNativeClient: the driver's own client, with the API the fast path uses", async () => {
    const client = (await nativeClientOf(fork().getConnection())) as Record<string, unknown>;
    if (driver === 'sqlite') {
      expect(client).toMatchObject({ open: true, inTransaction: false });
      expect(typeof client.prepare).toBe('function');
    } else {
      expect(client).toMatchObject({ ending: false });
      expect(typeof client.totalCount).toBe('number');
      expect(typeof client.query).toBe('function');
    }
  });
});

describe('MikroORM internals the library relies on (postgresql pools)', () => {
  it("driverOptions.onPoolCreated: called with each pg Pool before it connects, and kept out of the pool's options", async () => {
    const topology = topologies.postgresql();
    const pools: { options: Record<string, unknown>; totalCount: number }[] = [];
    const earlier: object[] = [];
    // MikroORM makes a new pool on each reconnect (ensureDatabase reconnects): the hook sees every one.
    const orm = await MikroORM.init({
      ...topology.shared,
      dbName: 'postgres',
      ensureDatabase: false,
      entities,
      driverOptions: withPoolCreatedHook({ onPoolCreated: (pool: object) => void earlier.push(pool) }, pool => void pools.push(pool as never)),
    });
    try {
      await orm.em.getConnection().execute('select 1');
      expect(pools).toHaveLength(1);
      expect(earlier).toEqual(pools);
      expect(pools[0]!.options).not.toHaveProperty('onPoolCreated');
      expect(pools[0]!.totalCount).toBe(1);
      expect(pools[0]).toBe(await nativeClientOf(orm.em.getConnection()));
    } finally {
      await orm.close(true);
    }
  });
});

describe('MikroORM internals the library relies on (table reading)', () => {
  it('DatabaseTable.getEntityDeclaration and setForeignKeys: a table read as entity metadata, foreign keys as relations unless dropped', async () => {
    const orm = await MikroORM.init({ driver: SqliteDriver, dbName: ':memory:', entities: [], discovery: { warnWhenNoEntities: false } });
    try {
      const em = orm.em.fork();
      await em.getConnection().execute('create table owner (id integer not null primary key, full_name varchar(20) not null)');
      await em.getConnection().execute('create table pet (id integer not null primary key, owner_id integer null references owner (id))');
      const schema = await introspectTables(orm);
      const helper = em.getPlatform().getSchemaHelper() as Parameters<typeof entityDeclarationOf>[2];
      const owner = entityDeclarationOf(schema.getTable('owner')!, orm.config.getNamingStrategy(), helper);
      expect([owner.className, owner.properties.fullName!.type, owner.properties.fullName!.fieldNames, owner.properties.fullName!.length]).toEqual([
        'Owner',
        'string',
        ['full_name'],
        20,
      ]);
      const pet = schema.getTable('pet')!;
      expect(entityDeclarationOf(pet, orm.config.getNamingStrategy(), helper).properties.owner).toMatchObject({
        kind: 'm:1',
        type: 'Owner',
        fieldNames: ['owner_id'],
        nullable: true,
      });
      keepForeignKeys(pet, () => false);
      expect(entityDeclarationOf(pet, orm.config.getNamingStrategy(), helper).properties.ownerId).toMatchObject({
        kind: 'scalar',
        type: 'integer',
        fieldNames: ['owner_id'],
      });
    } finally {
      await orm.close(true);
    }
  });
});

/** A connection watch that records what it hears; `gate` is what it answers to a query about to start. */
function recordingWatch(connected: () => Promise<void> | void = () => undefined) {
  const heard: string[] = [];
  let busy = 0;
  let gate: Promise<void> | undefined;
  const watch: ConnectionWatch = {
    connected: () => {
      heard.push('connected');
      return connected();
    },
    busy: delta => {
      busy += delta;
      heard.push(delta > 0 ? '+1' : '-1');
    },
    gate: () => gate,
  };
  return {
    watch,
    heard,
    busy: () => busy,
    setGate: (next: Promise<void> | undefined) => {
      gate = next;
    },
  };
}

describe.each(['sqlite', 'postgresql'] as const)('MikroORM internals the shard registry relies on (%s)', driver => {
  let topology: Topology;
  let template: MikroORM;

  beforeAll(async () => {
    topology = topologies[driver]();
    // Discovered once, never connected: the registry's template of a kind of shard.
    template = await MikroORM.init({ ...topology.shared, ...topology.database('registry_template'), entities });
  });

  afterAll(async () => {
    await template?.close(true);
    await topology?.dispose();
  });

  /** A shard's MikroORM on the template's metadata, its schema made, disconnected again. */
  async function shard(name: string): Promise<MikroORM> {
    const orm = ormWithMetadata(
      { ...topology.shared, ...topology.database(name), entities } as never,
      template.getMetadata(),
      template.config.get('extensions'),
    ) as MikroORM;
    await orm.schema.ensureDatabase();
    await orm.schema.refresh();
    await orm.close();
    return orm;
  }

  /** Runs `test` on a shard whose connections a recording watch watches, and closes the shard. */
  async function watched(name: string, test: (orm: MikroORM, recorder: ReturnType<typeof recordingWatch>) => Promise<void>): Promise<void> {
    const orm = await shard(name);
    const recorder = recordingWatch();
    watchConnections(orm, recorder.watch);
    try {
      await test(orm, recorder);
    } finally {
      await orm.close(true);
    }
  }

  it('ormWithMetadata: a MikroORM built synchronously on discovered metadata, which it shares, and which works', async () => {
    const orm = await shard('registry_built');
    try {
      expect(orm.getMetadata().get(Author)).toBe(template.getMetadata().get(Author));
      expect(orm.getMetadata().getAll()).toEqual(template.getMetadata().getAll());
      expect(await orm.isConnected()).toBe(false);
      const em = orm.em.fork();
      em.create(Author, { id: 1, name: 'built' });
      await em.flush();
      expect((await orm.em.fork().findOneOrFail(Author, 1)).name).toBe('built');
    } finally {
      await orm.close(true);
    }
  });

  it('watchConnections: connected() once per connect, after MikroORM connected and before waiting queries go on', async () => {
    const orm = await shard('registry_connect');
    const order: string[] = [];
    // The hook's own queries (schema tools, raw SQL) run inside the connect and do not wait for it.
    const recorder = recordingWatch(async () => {
      await orm.em.fork().getConnection().execute('select 1 as one');
      order.push('hook done');
    });
    watchConnections(orm, recorder.watch);
    try {
      const connection = orm.em.getConnection();
      // Concurrent first queries share one connect (MikroORM's ensureConnection() alone would open two clients).
      const queries = [1, 2].map(async n => {
        const rows = await connection.execute(`select ${n} as n`);
        order.push(`query ${n}`);
        return rows;
      });
      expect(await Promise.all(queries)).toEqual([[{ n: 1 }], [{ n: 2 }]]);
      expect(recorder.heard.filter(event => event === 'connected')).toHaveLength(1);
      expect(order.slice(0, 1)).toEqual(['hook done']);
      expect(recorder.busy()).toBe(0);
      // Closed and used again: a new connect, heard again.
      await orm.close();
      expect(await orm.isConnected()).toBe(false);
      await connection.execute('select 3 as n');
      expect(recorder.heard.filter(event => event === 'connected')).toHaveLength(2);
    } finally {
      await orm.close(true);
    }
  });

  it('watchConnections: every query, through any entity manager, is busy while it runs; a top-level transaction until it ends', async () => {
    await watched('registry_busy', async (orm, recorder) => {
      await orm.em.fork().find(Author, {});
      expect(recorder.busy()).toBe(0);
      expect(recorder.heard).toContain('+1');
      let inside = -1;
      let nested = -1;
      await orm.em.fork().transactional(async em => {
        await em.find(Author, {});
        inside = recorder.busy();
        // A nested transaction (a savepoint, begin with the outer ctx) is part of the outer one.
        await em.transactional(async inner => {
          await inner.find(Author, {});
          nested = recorder.busy();
        });
      });
      expect([inside, nested, recorder.busy()]).toEqual([1, 1, 0]);
      // A rolled-back transaction ends too.
      await expect(
        orm.em.fork().transactional(async em => {
          await em.find(Author, {});
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(recorder.busy()).toBe(0);
      // A failed query ends as well.
      await expect(orm.em.getConnection().execute('select * from no_such_table')).rejects.toThrow();
      expect(recorder.busy()).toBe(0);
    });
  });

  it('watchConnections: a query waits for the gate (a close in progress) before it starts, busy from the start', async () => {
    await watched('registry_gate', async (orm, recorder) => {
      let open!: () => void;
      recorder.setGate(new Promise<void>(resolve => (open = resolve)));
      let done = false;
      const query = orm.em
        .getConnection()
        .execute('select 1 as one')
        .then(rows => {
          done = true;
          return rows;
        });
      await new Promise(resolve => setTimeout(resolve, 20));
      expect([done, recorder.busy()]).toEqual([false, 1]);
      recorder.setGate(undefined);
      open();
      expect(await query).toEqual([{ one: 1 }]);
      expect(recorder.busy()).toBe(0);
    });
  });

  it('whileBusy: work on the driver client is busy while it runs; on an unwatched connection it just runs', async () => {
    const orm = await shard('registry_while_busy');
    const recorder = recordingWatch();
    try {
      const connection = orm.em.getConnection();
      expect(await whileBusy(connection, async () => 'unwatched')).toBe('unwatched');
      watchConnections(orm, recorder.watch);
      let during = -1;
      expect(
        await whileBusy(connection, async () => {
          during = recorder.busy();
          return 'watched';
        }),
      ).toBe('watched');
      expect([during, recorder.busy()]).toEqual([1, 0]);
      await expect(whileBusy(connection, () => Promise.reject(new Error('failed')))).rejects.toThrow('failed');
      expect(recorder.busy()).toBe(0);
    } finally {
      await orm.close(true);
    }
  });
});
