import { DefaultLogger, MikroORM, type LogContext, type LoggerOptions, type Options } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';
import { SHARDS, shardChooser, shardOfId } from './support/fleet.ts';
import { topologies, type Topology } from './support/topology.ts';

// Merged reads run compiled SQL on each shard without `em.find`; they must still be logged, timed, rewritten by
// `onQuery` and cancelled as MikroORM does it, and every logged line must name its shard.

const lines: string[] = [];
const contexts: LogContext[] = [];
const seen: string[] = [];

/** Shared MikroORM options of the fleet and of the plain database: the same logging set-up. */
function logging(overrides: Partial<Options> = {}): Partial<Options> {
  return { logger: line => lines.push(line), colors: false, ...overrides };
}

/** A logger recording every context MikroORM hands it, whatever is enabled. */
class RecordingLogger extends DefaultLogger {
  override logQuery(context: { query: string } & LogContext): void {
    contexts.push(context);
    super.logQuery(context);
  }
}

const QUERY = { born: { $gte: 1950 }, name: { $like: 'a%' } };
const FIND = { orderBy: { name: 'asc' as const }, limit: 3 };

/** A logged line without its timing, which differs from run to run. */
const untimed = (line: string) => line.replace(/ \[took \d+ ms(, \d+ results?)?\]$/, '');

describe.each(['sqlite', 'postgresql'] as const)('the fast path honours MikroORM (%s)', driver => {
  let topology: Topology;
  const opened: { close(force?: boolean): Promise<void> }[] = [];

  beforeAll(async () => {
    topology = topologies[driver]();
    // Fill the shards and the plain database once; each test opens its own views with its own logging options.
    const fleet = await fleetWith({});
    const plain = await plainWith({});
    await fleet.schema.refresh();
    await plain.schema.refresh();
    const em = fleet.em.fork();
    const one = plain.em.fork();
    for (let id = 1; id <= 30; id++) {
      const data = { id, name: `${'abc'[id % 3]}-${String(id).padStart(2, '0')}`, born: 1940 + id };
      em.create(Author, data);
      one.create(Author, data);
    }
    await em.flush();
    await one.flush();
  });

  afterAll(async () => {
    for (const orm of opened) {
      await orm.close(true);
    }
    await topology?.dispose();
  });

  async function fleetWith(options: Partial<Options>): Promise<ShardedMikroORM> {
    const orm = await ShardedMikroORM.init({
      ...topology.shared,
      ...logging(options),
      entities,
      shards: topology.shards(SHARDS),
      shardChooser,
      idChooser: ({ id }) => [shardOfId(id)],
    });
    opened.push(orm);
    await warm(orm.em.fork());
    return orm;
  }

  async function plainWith(options: Partial<Options>): Promise<MikroORM> {
    const orm = await MikroORM.init({ ...topology.shared, ...logging(options), ...topology.database('plain'), entities });
    opened.push(orm);
    await warm(orm.em.fork());
    return orm;
  }

  /** MikroORM runs a few queries of its own on first use (is the database there?): not what the tests look at. */
  async function warm(em: { count(entity: typeof Author): Promise<number> }): Promise<void> {
    await em.count(Author).catch(() => undefined);
    lines.length = 0;
    contexts.length = 0;
    seen.length = 0;
  }

  /** The lines logged while `run` runs. */
  async function logged(run: () => Promise<unknown>): Promise<string[]> {
    lines.length = 0;
    await run();
    return lines.map(untimed);
  }

  it('logs each shard’s query of a merged find and count as MikroORM logs it on one database, naming the shard', async () => {
    for (const debug of [true, ['query'] as const]) {
      const fleet = await fleetWith({ debug: debug as Options['debug'] });
      const plain = await plainWith({ debug: debug as Options['debug'] });
      const [find] = await logged(() => plain.em.fork().find(Author, QUERY, FIND));
      const [count] = await logged(() => plain.em.fork().count(Author, QUERY));
      expect(find).toMatch(debug === true ? /like 'a%'/ : /like \?/); // values written in only with `query-params`
      const shardFind = await logged(() => fleet.em.fork().find(Author, QUERY, FIND));
      const shardCount = await logged(() => fleet.em.fork().count(Author, QUERY));
      const expected = (line: string) => fleet.shardIds.map(id => line!.replace('[query] ', `[query] (shard ${id}) `));
      expect([...shardFind].sort()).toEqual(expected(find!));
      expect([...shardCount].sort()).toEqual(expected(count!));
    }
  });

  it('hands custom loggers the context MikroORM gives them, with the shard', async () => {
    const factory = (options: LoggerOptions) => new RecordingLogger(options);
    const fleet = await fleetWith({ loggerFactory: factory });
    const plain = await plainWith({ loggerFactory: factory });
    contexts.length = 0;
    await plain.em.fork().find(Author, QUERY, FIND);
    const [one] = contexts.splice(0);
    const em = fleet.em.fork();
    await em.find(Author, QUERY, FIND);
    expect(contexts).toHaveLength(SHARDS);
    for (const context of contexts) {
      expect(Object.keys(context).sort()).toEqual([...Object.keys(one!), 'shard', 'label'].sort());
      expect(context).toMatchObject({ query: one!.query, params: one!.params, level: 'info', label: `shard ${context.shard}` });
      expect(context.id).toBe(em.on(context.shard as string).id);
      expect(typeof context.took).toBe('number');
    }
    // Debug is off: the default logger shows nothing, yet every query reached the custom logger.
    expect(lines).toHaveLength(0);
  });

  it('honours per-query logging options and an entity manager’s logger context', async () => {
    const fleet = await fleetWith({});
    expect(await logged(() => fleet.em.fork().count(Author, QUERY))).toEqual([]);
    const shown = await logged(() => fleet.em.fork().find(Author, QUERY, { ...FIND, logging: { enabled: true, label: 'report' } }));
    expect(shown).toHaveLength(SHARDS);
    expect(shown.every(line => line.startsWith('[query] (report) select '))).toBe(true);
    const muted = await fleetWith({ debug: true });
    expect(await logged(() => muted.em.fork().count(Author, QUERY, { logging: { enabled: false } }))).toEqual([]);
    const forked = await logged(() => muted.em.fork({ loggerContext: { label: 'request 7' } }).count(Author, QUERY));
    expect(forked.map(line => line.slice(0, 28))).toEqual(Array(SHARDS).fill('[query] (request 7) select c'));
  });

  it('logs slow queries to the slow-query logger, with the shard, as MikroORM does', async () => {
    const fleet = await fleetWith({ slowQueryThreshold: 0 });
    const plain = await plainWith({ slowQueryThreshold: 0 });
    const [one] = await logged(() => plain.em.fork().count(Author, QUERY));
    expect(one).toMatch(/^\[slow-query\] select count/);
    const slow = await logged(() => fleet.em.fork().count(Author, QUERY));
    expect([...slow].sort()).toEqual(fleet.shardIds.map(id => one!.replace('[slow-query] ', `[slow-query] (shard ${id}) `)));
  });

  it('applies onQuery to every shard’s query, and answers as one database does', async () => {
    const rewrite = (sql: string) => {
      seen.push(sql);
      return `/* reporting */ ${sql}`;
    };
    const fleet = await fleetWith({ onQuery: rewrite, debug: true });
    const plain = await plainWith({ onQuery: rewrite, debug: true });
    seen.length = 0;
    const [line] = await logged(() => plain.em.fork().find(Author, QUERY, FIND));
    const expectedIds = (await plain.em.fork().find(Author, QUERY, FIND)).map(a => a.id);
    const [plainSql] = seen.splice(0);
    let found: Author[] = [];
    const shardLines = await logged(async () => (found = await fleet.em.fork().find(Author, QUERY, FIND)));
    expect(seen.splice(0)).toEqual(Array(SHARDS).fill(plainSql));
    expect(line).toMatch(/^\[query\] \/\* reporting \*\/ select /);
    expect([...shardLines].sort()).toEqual(fleet.shardIds.map(id => line!.replace('[query] ', `[query] (shard ${id}) `)));
    expect(found.map(a => a.id)).toEqual(expectedIds);
  });

  it('cancels with an abort signal as MikroORM does, given per query or to the fork', async () => {
    const fleet = await fleetWith({});
    const plain = await plainWith({});
    const controller = new AbortController();
    controller.abort();
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => new Error('no error'),
        (e: unknown) => e as Error,
      );
    const expected = await failure(plain.em.fork().find(Author, QUERY, { ...FIND, signal: controller.signal }));
    const viaQuery = await failure(fleet.em.fork().find(Author, QUERY, { ...FIND, signal: controller.signal }));
    const viaFork = await failure(fleet.em.fork({ signal: controller.signal }).count(Author, QUERY));
    expect(expected.message).not.toBe('no error');
    expect(expected).toBeInstanceOf(Error);
    for (const error of [viaQuery, viaFork]) {
      expect(error.constructor).toBe(expected.constructor);
      expect(error.message).toMatch(new RegExp(`^${expected.message} \\(shard s0`));
    }
    // Not aborted: the same queries answer.
    expect(await fleet.em.fork({ signal: new AbortController().signal }).count(Author, QUERY)).toBe(await plain.em.fork().count(Author, QUERY));
  });
});
