import { inspect } from 'node:util';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { afterAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM, ShardingError, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { Author, entities } from './support/entities.ts';
import { PG_URL, postgresTopology } from './support/topology.ts';

// No secret in any error message, error field, inspect() output or log line. The local server trusts every
// connection, so a URL with a password still connects: the password is only there to be leaked, or not.

const SECRET = 'S3cret-PW-7f3a';
const topology = postgresTopology();
afterAll(() => topology.dispose());

/** PG_URL with a password and a database. */
function urlWith(dbName: string, password = SECRET): string {
  const url = new URL(PG_URL);
  url.password = password;
  url.pathname = `/${dbName}`;
  return url.toString();
}

/** Everything a user, a log or an error tracker could see of an error. */
function visible(error: unknown): string {
  const e = error as ShardingError;
  return [
    e.message,
    e.stack,
    inspect(e, { depth: 10, showHidden: true }),
    inspect(e.value, { depth: 10 }),
    JSON.stringify(e, (_, v) => (typeof v === 'bigint' ? String(v) : v)),
  ].join('\n');
}

async function initError(options: ShardedMikroORMOptions): Promise<ShardingError> {
  const result = await ShardedMikroORM.init(options).then(
    orm => orm.close(true).then(() => undefined),
    (error: unknown) => error,
  );
  expect(result).toBeInstanceOf(ShardingError);
  return result as ShardingError;
}

const base = { driver: PostgreSqlDriver, entities, shardChooser: () => 's0' } as const;

describe('a shard given as a connection URL', () => {
  it('is a shorthand for { clientUrl }, and never shows its password', async () => {
    const s0 = topology.database('url_s0');
    const s1 = topology.database('url_s1');
    const lines: string[] = [];
    const orm = await ShardedMikroORM.init({
      ...base,
      debug: true,
      logger: line => lines.push(line),
      shards: { s0: urlWith(s0.dbName!), s1: urlWith(s1.dbName!) },
      shardChooser: ({ entity }) => ((entity as Author).id % 2 === 0 ? 's0' : 's1'),
      connect: false,
    });
    try {
      await orm.schema.ensureDatabase();
      await orm.schema.create();
      expect(orm.shard('s1').config.get('dbName')).toBe(s1.dbName);
      const em = orm.em.fork();
      em.create(Author, { id: 1, name: 'odd' });
      em.create(Author, { id: 2, name: 'even' });
      await em.flush();
      expect((await orm.em.fork().find(Author, {}, { orderBy: { id: 'asc' } })).map(a => [a.id, orm.em.shardOf(a)])).toEqual([
        [1, 's1'],
        [2, 's0'],
      ]);
      for (const shown of [inspect(orm, { depth: 10 }), inspect(orm.em.fork(), { depth: 10 }), inspect(orm.em, { depth: 10 })]) {
        expect(shown).not.toContain(SECRET);
      }
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(SECRET);
    } finally {
      await orm.close(true);
    }
  });
});

describe('errors echo no secret', () => {
  const cases: [string, () => ShardedMikroORMOptions | Promise<ShardedMikroORMOptions>, string, RegExp][] = [
    [
      'an unparseable URL given as the shard',
      () => ({ ...base, shards: { s0: 'postgresql://app:S3cret-PW-7f3a@[bad/db' } }),
      'INVALID_OPTIONS',
      /shard "s0" has a `clientUrl` that is not a valid URL: "postgresql:\/\/app:\*\*\*@\[bad\/db"/,
    ],
    [
      'an unparseable clientUrl',
      () => ({ ...base, shards: { s0: { clientUrl: `postgresql://app:${SECRET}@[bad/db` } } }),
      'INVALID_OPTIONS',
      /shard "s0".*app:\*\*\*@/,
    ],
    [
      'an unparseable replica clientUrl',
      () => ({ ...base, shards: { s0: { clientUrl: PG_URL, dbName: 'postgres', replicas: [{ clientUrl: `postgresql://ro:${SECRET}@[bad` }] } } }),
      'INVALID_OPTIONS',
      /shard "s0"/,
    ],
    [
      'a string shard that is not a URL',
      () => ({ ...base, shards: { s0: `app:${SECRET}@db.internal/x` } }),
      'INVALID_OPTIONS',
      /shard "s0" is a string that is not a connection URL/,
    ],
    [
      'options in a list',
      () => ({ ...base, shards: { s0: [{ user: 'app', password: SECRET }] as never } }),
      'INVALID_OPTIONS',
      /shard "s0" must map to an options object.*got \(Array\)/,
    ],
    [
      'a shard that refuses connections',
      () => ({ ...base, shards: { s0: `postgresql://app:${SECRET}@127.0.0.1:1/db` } }),
      'SHARD_INIT_FAILED',
      /Shard "s0" failed to initialise: connect ECONNREFUSED/,
    ],
    [
      'a password option and a role that does not exist',
      () => ({ ...base, shards: { s0: { clientUrl: PG_URL, dbName: 'postgres', user: 'no_such_role_x', password: SECRET } } }),
      'SHARD_INIT_FAILED',
      /Shard "s0" failed to initialise: role "no_such_role_x" does not exist/,
    ],
  ];

  it.each(cases)('%s', async (_, options, code, message) => {
    const error = await initError(await options());
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(visible(error)).not.toContain(SECRET);
  });

  it('in a shard id a chooser mixed up with a URL, and in an error a chooser throws', async () => {
    const dbName = topology.database('chooser').dbName!;
    let answer = (): string => urlWith('x');
    await using orm = await ShardedMikroORM.init({
      ...base,
      shards: { s0: { clientUrl: PG_URL, dbName, password: SECRET } },
      shardChooser: () => answer(),
      connect: false,
    });
    await orm.schema.ensureDatabase();
    await orm.schema.create();
    const unknown = await flushOne(orm);
    expect(unknown).toMatchObject({ code: 'UNKNOWN_SHARD', entity: 'Author#1' });
    expect(unknown.message).toMatch(/shardChooser returned unknown shard "postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/x"/);
    expect(unknown.value).toBe('postgresql://postgres:***@127.0.0.1:5432/x');
    expect(visible(unknown)).not.toContain(SECRET);

    answer = () => {
      throw new Error(`directory unreachable: login with ${SECRET} refused`);
    };
    const failed = await flushOne(orm);
    expect(failed).toMatchObject({ code: 'CHOOSER_FAILED', message: expect.stringMatching(/directory unreachable: login with \*\*\* refused/) });
    expect(visible(failed)).not.toContain(SECRET);
    expect(await orm.em.fork().count(Author)).toBe(0);
  });
});

async function flushOne(orm: ShardedMikroORM): Promise<ShardingError> {
  const em = orm.em.fork();
  em.create(Author, { id: 1, name: 'x' });
  return (await em.flush().then(
    () => undefined,
    (error: unknown) => error,
  )) as ShardingError;
}
