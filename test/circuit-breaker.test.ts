import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partialFailuresOf, ShardedMikroORM, ShardingError, type CircuitStateChange } from 'mikro-orm-sharding';
// White-box: the state machine and the classification are not API; they are tested here without any server.
import { CircuitBreaker, type BreakerSettings } from '../packages/mikro-orm-sharding/src/fleet/circuit-breaker.ts';
import { isUnavailable } from '../packages/mikro-orm-sharding/src/errors/unavailable.ts';
import { Author, entities } from './support/entities.ts';
import { openFleet } from './support/fleet.ts';
import { startSilentServer, type SilentServer } from './support/silent-server.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

const refusedError = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });

function breaker(settings: Partial<BreakerSettings> | false = {}) {
  let now = 1_000;
  const changes: CircuitStateChange[] = [];
  const made = new CircuitBreaker(
    's1',
    settings === false ? false : { failureThreshold: 2, coolDownMs: 100, halfOpenProbes: 1, onStateChange: change => changes.push(change), ...settings },
    () => now,
  );
  return { breaker: made, changes, advance: (ms: number) => (now += ms) };
}

const admitted = (admission: ReturnType<CircuitBreaker['admit']>) => !('refused' in admission);

describe('the circuit breaker of a shard', () => {
  it('opens after failureThreshold connection failures in a row, and a success resets the count', () => {
    const { breaker: b, changes } = breaker();
    b.failed(refusedError, false);
    b.succeeded(false);
    b.failed(refusedError, false);
    expect(b.state).toBe('closed');
    b.failed(refusedError, false);
    expect(b.state).toBe('open');
    expect(b.health()).toMatchObject({ state: 'open', consecutiveFailures: 2, failures: 3, opened: 1, lastError: { code: 'ECONNREFUSED' } });
    expect(changes.map(change => [change.from, change.to])).toEqual([['closed', 'open']]);
  });

  it('refuses at once during the cool-down, naming the shard, the failures and the last error', () => {
    const { breaker: b, advance } = breaker();
    b.failed(refusedError, false);
    b.failed(refusedError, false);
    advance(99);
    const admission = b.admit();
    expect(admitted(admission)).toBe(false);
    const error = (admission as { refused: ShardingError }).refused;
    expect(error).toMatchObject({ code: 'SHARD_UNAVAILABLE', shard: 's1', cause: refusedError });
    expect(error.message).toContain('circuit breaker is open after 2 connection failures in a row (last: connect ECONNREFUSED 127.0.0.1:1)');
    expect(b.refusesNow()).toBe(true);
    expect(b.health().refused).toBe(1);
  });

  it('lets one probe through after the cool-down: a success closes it, a failure opens it for another cool-down', () => {
    const { breaker: b, advance, changes } = breaker();
    b.failed(refusedError, false);
    b.failed(refusedError, false);
    advance(100);
    expect(b.refusesNow()).toBe(false);
    expect(b.admit()).toEqual({ probe: true });
    expect(b.state).toBe('half-open');
    expect(admitted(b.admit())).toBe(false); // one probe at a time
    b.failed(refusedError, true);
    expect(b.health()).toMatchObject({ state: 'open', opened: 2 });
    advance(50);
    expect(admitted(b.admit())).toBe(false);
    advance(50);
    expect(b.admit()).toEqual({ probe: true });
    b.succeeded(true);
    expect(b.health()).toMatchObject({ state: 'closed', consecutiveFailures: 0, retryAt: undefined });
    expect(changes.map(change => change.to)).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
    expect(admitted(b.admit())).toBe(true);
  });

  it('lets halfOpenProbes through at once, and a probe that never settles loses its place after a cool-down', () => {
    const { breaker: b, advance } = breaker({ halfOpenProbes: 2 });
    b.failed(refusedError, false);
    b.failed(refusedError, false);
    advance(100);
    expect([b.admit(), b.admit()]).toEqual([{ probe: true }, { probe: true }]);
    expect(admitted(b.admit())).toBe(false);
    advance(100);
    expect(b.admit()).toEqual({ probe: true });
  });

  it('only counts when turned off, and ignores a listener that throws', () => {
    const off = breaker(false).breaker;
    for (let i = 0; i < 10; i++) off.failed(refusedError, false);
    expect(off.health()).toMatchObject({ state: 'closed', failures: 10, consecutiveFailures: 10 });
    expect(admitted(off.admit())).toBe(true);
    const { breaker: b } = breaker({
      failureThreshold: 1,
      onStateChange: () => {
        throw new Error('listener');
      },
    });
    b.failed(refusedError, false);
    expect(b.state).toBe('open');
  });

  it('masks secrets in the last error it keeps', () => {
    const { breaker: b } = breaker();
    b.failed(new Error('could not reach postgresql://app:hunter2@db:5432/x'), false);
    expect(b.health().lastError?.message).toBe('could not reach postgresql://app:***@db:5432/x');
  });
});

describe('what counts as a shard that cannot be reached', () => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });
  it.each([
    ['refused', withCode('ECONNREFUSED'), true],
    ['reset', withCode('ECONNRESET'), true],
    ['timed out', withCode('ETIMEDOUT'), true],
    ['host unreachable', withCode('EHOSTUNREACH'), true],
    ['server shutting down (57P01)', withCode('57P01'), true],
    ['server starting or stopping (57P03)', withCode('57P03'), true],
    ['too many connections (53300)', withCode('53300'), true],
    ['connection failure (08006)', withCode('08006'), true],
    ['pg: terminated unexpectedly', new Error('Connection terminated unexpectedly'), true],
    ['pg-pool: no connection in time', new Error('timeout exceeded when trying to connect'), true],
    ['pg-pool: connect timeout, wrapping the socket error', new Error('Connection terminated due to connection timeout', { cause: new Error('x') }), true],
    ['a cause deeper down', new Error('outer', { cause: withCode('ECONNRESET') }), true],
    ['unique violation (23505)', withCode('23505'), false],
    ['statement timeout (57014)', withCode('57014'), false],
    ['bad password (28P01)', withCode('28P01'), false],
    ['unknown database (3D000)', withCode('3D000'), false],
    ['protocol violation (08P01)', withCode('08P01'), false],
    ['a closed pool', new Error('Cannot use a pool after calling end on the pool'), false],
    ['not an object', 'ECONNREFUSED', false],
  ])('%s', (_label, error, expected) => {
    expect(isUnavailable(error)).toBe(expected);
  });
});

describe('circuit breaker and onShardError options', () => {
  let topology: Topology;
  beforeAll(() => {
    topology = sqliteTopology();
  });
  afterAll(() => topology?.dispose());

  it.each([
    [{ circuitBreaker: { failureThreshold: 0 } }, /circuitBreaker.failureThreshold/],
    [{ circuitBreaker: { coolDownMs: -1 } }, /circuitBreaker.coolDownMs/],
    [{ circuitBreaker: { halfOpenProbes: 1.5 } }, /circuitBreaker.halfOpenProbes/],
    [{ circuitBreaker: { onStateChange: 'log' } }, /circuitBreaker.onStateChange/],
    [{ circuitBreaker: 'on' }, /circuitBreaker/],
    [{ onShardError: 'ignore' }, /onShardError/],
  ])('refuses %j in init()', async (options, message) => {
    const error = await openFleet(topology, options as never).then(
      orm => orm.close(),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ShardingError);
    expect(error).toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringMatching(message) });
  });

  it('refuses a bad onShardError of one call; a fleet where every shard answers reports nothing', async () => {
    await using orm = await openFleet(topology, { onShardError: 'partial' });
    const em = orm.em.fork();
    em.create(Author, { id: 1, name: 'a' });
    em.create(Author, { id: 2, name: 'b' });
    await em.flush();
    const found = await orm.em.fork().find(Author, {}, { orderBy: { id: 'asc' } });
    expect(found.map(author => author.id)).toEqual([1, 2]);
    expect(partialFailuresOf(found)).toBeUndefined();
    await expect(orm.em.fork().count(Author, {}, { onShardError: 'skip' as never })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    expect(Object.values(orm.health()).map(health => health.state)).toEqual(['closed', 'closed', 'closed']);
    expect(() => orm.shardState('nope' as never)).toThrow(expect.objectContaining({ code: 'UNKNOWN_SHARD' }));
  });

  it('keeps SQLite shards closed and their driver options untouched', async () => {
    await using orm = await openFleet(topology);
    expect(orm.shardState('s0')).toMatchObject({ shard: 's0', state: 'closed', failures: 0, lastError: undefined });
    expect(orm.shard('s0').config.get('driverOptions')).not.toHaveProperty('onPoolCreated');
  });
});

// A shard host that accepts TCP connections and never answers: each connection attempt waits the connect timeout.
describe('an open circuit', () => {
  let silent: SilentServer;
  beforeAll(async () => {
    silent = await startSilentServer();
  });
  afterAll(() => silent?.close());

  it('refuses at once, without touching the network', { timeout: 15_000 }, async () => {
    await using orm = await ShardedMikroORM.init({
      driver: PostgreSqlDriver,
      entities,
      shards: { hung: silent.url('nowhere') },
      driverOptions: { connectionTimeoutMillis: 300 },
      shardChooser: () => 'hung',
      connect: false,
      circuitBreaker: { failureThreshold: 1, coolDownMs: 60_000 },
    });
    const timed = async () => {
      const start = performance.now();
      const error = await orm.em
        .fork()
        .findOne(Author, 1)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      return { error, ms: performance.now() - start };
    };
    const first = await timed();
    expect(first.error).toMatchObject({ code: 'SHARD_UNAVAILABLE', shard: 'hung', message: expect.stringMatching(/connection timeout/) });
    expect(first.ms).toBeGreaterThanOrEqual(250);
    const before = silent.accepted;
    const second = await timed();
    expect(second.error).toMatchObject({ code: 'SHARD_UNAVAILABLE', shard: 'hung', message: expect.stringMatching(/circuit breaker is open/) });
    expect(second.ms).toBeLessThan(100);
    expect(silent.accepted).toBe(before);
    expect(orm.shardState('hung')).toMatchObject({ state: 'open', refused: 1, failures: 1 });
  });
});
