// The HTTP benchmark: `pnpm bench:http -- [options]`. Requests per second of a one-shard route, `GET /authors/:id`
// (`orm.em.findOne`), through this library's request-scope middleware (each request pinned to its tenant's shard by
// `shardResolver`) against the same route through plain MikroORM's `RequestContext` on one database, with autocannon
// on loopback. Each server runs in a process of its own; the systems alternate run by run; every answer is checked.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Databases, type DbOptions } from './databases.ts';
import type { Framework, ServerConfig } from './http-server.ts';

const USAGE = `Usage: pnpm bench:http -- [options]

  --driver sqlite|postgresql   databases (default sqlite; postgresql at --pg-url)
  --pg-url URL                 default postgresql://postgres@127.0.0.1:5432
  --frameworks LIST            node,express,fastify (default all three)
  --shards N                   shards of the sharded fleet (default 4); one of them serves every request
  --rows N                     authors in each database (default 1000)
  --runs N                     runs per framework and system, alternating (default 3)
  --duration S                 seconds of load per run (default 5)
  --connections N              concurrent connections (default 10)
  --json                       one JSON line per framework instead of the table
  --help
`;

const SERVER = fileURLToPath(new URL('./http-server.ts', import.meta.url));
const TENANT = 'acme';

interface Options {
  readonly driver: 'sqlite' | 'postgresql';
  readonly pgUrl: string;
  readonly frameworks: readonly Framework[];
  readonly shards: number;
  readonly rows: number;
  readonly runs: number;
  readonly duration: number;
  readonly connections: number;
  readonly json: boolean;
}

function options(): Options | undefined {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter(arg => arg !== '--'),
    options: {
      driver: { type: 'string', default: 'sqlite' },
      'pg-url': { type: 'string', default: process.env.PG_URL ?? 'postgresql://postgres@127.0.0.1:5432' },
      frameworks: { type: 'string', default: 'node,express,fastify' },
      shards: { type: 'string', default: '4' },
      rows: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const whole = (name: string, value: string, min: number) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number of at least ${min}; got ${value}`);
    return n;
  };
  if (values.driver !== 'sqlite' && values.driver !== 'postgresql') throw new Error(`--driver must be sqlite or postgresql; got ${values.driver}`);
  const frameworks = values.frameworks.split(',') as Framework[];
  if (frameworks.some(f => !['node', 'express', 'fastify'].includes(f))) throw new Error(`--frameworks takes node, express, fastify; got ${values.frameworks}`);
  return {
    driver: values.driver,
    pgUrl: values['pg-url'],
    frameworks,
    shards: whole('shards', values.shards, 2),
    rows: whole('rows', values.rows, 1),
    runs: whole('runs', values.runs, 1),
    duration: whole('duration', values.duration, 1),
    connections: whole('connections', values.connections, 1),
    json: values.json,
  };
}

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
}

function start(config: ServerConfig): Promise<Server> {
  const child = fork(SERVER, [JSON.stringify(config)], {
    execArgv: ['--conditions=@mikro-orm-sharding/source'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', message => resolve({ url: `http://127.0.0.1:${(message as { port: number }).port}`, child }));
    child.once('exit', code => reject(new Error(`the ${config.system} ${config.framework} server exited with code ${code} before listening`)));
  });
}

function stop(server: Server): Promise<void> {
  return new Promise(resolve => {
    if (server.child.exitCode !== null) return resolve();
    server.child.once('exit', () => resolve());
    server.child.disconnect();
  });
}

/** The route must answer as the data says before it is measured. */
async function check(server: Server, rows: number): Promise<void> {
  for (const id of [1, Math.ceil(rows / 2), rows]) {
    const response = await fetch(`${server.url}/authors/${id}`, { headers: { 'x-tenant': TENANT } });
    const body = (await response.json()) as { id?: number; name?: string };
    if (response.status !== 200 || body.id !== id || body.name !== `author ${id}`) {
      throw new Error(`${server.url}/authors/${id} answered ${response.status} ${JSON.stringify(body)}`);
    }
  }
}

/** The server process's CPU time so far, in microseconds. */
function cpuOf(server: Server): Promise<number> {
  return new Promise(resolve => {
    const listener = (message: unknown) => {
      if (typeof message === 'object' && message !== null && 'cpu' in message) {
        server.child.off('message', listener);
        resolve((message as { cpu: number }).cpu);
      }
    };
    server.child.on('message', listener);
    server.child.send('cpu');
  });
}

interface Measured {
  /** Requests per second. */
  readonly rps: number;
  /** The server's CPU time per request, in microseconds. */
  readonly cpuUs: number;
}

/** One run of `duration` seconds; any error or non-2xx answer fails the benchmark. */
async function measure(server: Server, o: Options): Promise<Measured> {
  const before = await cpuOf(server);
  let next = 0;
  const result = await autocannon({
    url: server.url,
    connections: o.connections,
    duration: o.duration,
    headers: { 'x-tenant': TENANT },
    requests: [{ method: 'GET', setupRequest: request => ({ ...request, path: `/authors/${(next++ % o.rows) + 1}` }) }],
  });
  if (result.errors > 0 || result.non2xx > 0 || result.timeouts > 0) {
    throw new Error(`${server.url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`);
  }
  const cpu = (await cpuOf(server)) - before;
  return { rps: result.requests.average, cpuUs: cpu / Math.max(1, result.requests.total) };
}

const format = (n: number) => n.toFixed(0).padStart(8);

async function main(): Promise<number> {
  let o: Options | undefined;
  try {
    o = options();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!o) {
    process.stdout.write(USAGE);
    return 0;
  }
  const dbs = new Databases({ driver: o.driver, pgUrl: o.pgUrl });
  const servers: Server[] = [];
  const onSignal = () =>
    void Promise.all(servers.map(stop))
      .then(() => dbs.closeAll())
      .finally(() => process.exit(130));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const lines: string[] = [];
    for (const framework of o.frameworks) {
      const databases: Record<'sharded' | 'plain', DbOptions[]> = {
        sharded: await dbs.provision('http_sharded', o.shards),
        plain: await dbs.provision('http_plain', 1),
      };
      const running = {} as Record<'sharded' | 'plain', Server>;
      for (const system of ['sharded', 'plain'] as const) {
        running[system] = await start({ system, framework, driver: o.driver, databases: databases[system], rows: o.rows });
        servers.push(running[system]);
        await check(running[system], o.rows);
      }
      // An untimed second to warm both servers up, then the runs, alternating which system goes first.
      await measure(running.sharded, { ...o, duration: 1 });
      await measure(running.plain, { ...o, duration: 1 });
      const sharded: Measured[] = [];
      const plain: Measured[] = [];
      for (let run = 0; run < o.runs; run++) {
        for (const system of run % 2 === 0 ? (['sharded', 'plain'] as const) : (['plain', 'sharded'] as const)) {
          (system === 'sharded' ? sharded : plain).push(await measure(running[system], o));
          if (!o.json) process.stderr.write('.');
        }
      }
      for (const system of ['sharded', 'plain'] as const) await stop(running[system]);
      await dbs.release([...databases.sharded, ...databases.plain]);
      // Per run: requests/s sharded / plain, and CPU per request plain / sharded (both: above 1 is the middleware faster).
      const ratios = sharded.map((m, i) => m.rps / plain[i]!.rps);
      const cpuRatios = sharded.map((m, i) => plain[i]!.cpuUs / m.cpuUs);
      const row = {
        framework,
        driver: o.driver,
        shards: o.shards,
        rows: o.rows,
        duration_s: o.duration,
        connections: o.connections,
        sharded_rps: sharded.map(m => m.rps),
        plain_rps: plain.map(m => m.rps),
        ratios,
        sharded_cpu_us: sharded.map(m => m.cpuUs),
        plain_cpu_us: plain.map(m => m.cpuUs),
        cpu_ratios: cpuRatios,
      };
      const range = (values: readonly number[]) => `${Math.min(...values).toFixed(3)}-${Math.max(...values).toFixed(3)}`;
      lines.push(
        o.json
          ? JSON.stringify(row)
          : [
              `${framework.padEnd(8)} req/s   sharded ${sharded.map(m => format(m.rps)).join('')}   plain ${plain.map(m => format(m.rps)).join('')}   ratio ${range(ratios)}`,
              `${''.padEnd(8)} cpu us  sharded ${sharded.map(m => format(m.cpuUs)).join('')}   plain ${plain.map(m => format(m.cpuUs)).join('')}   ratio ${range(cpuRatios)}`,
            ].join('\n'),
      );
    }
    if (!o.json) {
      process.stderr.write('\n');
      process.stdout.write(
        `GET /authors/:id, one shard of ${o.shards} (${o.driver}), ${o.connections} connections, ${o.duration} s per run.\n` +
          "Per run: requests/s (ratio sharded / plain), and the server's CPU time per request in us (ratio plain / sharded).\n",
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`\nbenchmark failed: ${(error as Error).stack ?? error}\n`);
    return 1;
  } finally {
    await Promise.all(servers.map(stop));
    await dbs.closeAll();
  }
}

process.exitCode = await main();
