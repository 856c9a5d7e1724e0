// A loopback TCP proxy that delays every server->client chunk by a fixed number of milliseconds, so each request/
// response round trip costs that much more, as with database servers on a network. It runs in a child process so its
// work does not share the benchmark's event loop. Run directly: node proxy.ts <upstreamHost> <upstreamPort> <delayMs> <n>
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export interface ProxyOptions {
  listeners: number;
  upstreamHost: string;
  upstreamPort: number;
  delayMs: number;
}

export interface Proxy {
  /** One port per listener, each forwarding to the upstream server. */
  readonly ports: number[];
  stop(): void;
}

/** Starts the proxy child process and waits for its ports. */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const args = [options.upstreamHost, options.upstreamPort, options.delayMs, options.listeners].map(String);
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', l => {
      rl.close();
      resolve(l);
    });
    child.once('error', reject);
    child.once('exit', code => reject(new Error(`latency proxy exited with code ${code}`)));
  });
  const { ports } = JSON.parse(line) as { ports: number[] };
  return {
    ports,
    stop: () => {
      child.stdin?.end();
      child.kill();
    },
  };
}

/** Pipes `from` to `to`, each chunk released `delayMs` after it arrived, in order. */
function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now + 0.05) to.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
  };
  from.on('data', chunk => {
    queue.push({ due: performance.now() + delayMs, chunk });
    timer ??= setTimeout(flush, delayMs);
  });
  from.on('end', () => {
    const finish = () => (queue.length > 0 || timer ? setTimeout(finish, delayMs) : to.end());
    finish();
  });
}

function serve(upstreamHost: string, upstreamPort: number, delayMs: number): Promise<number> {
  const server = createServer(client => {
    const upstream = createConnection({ host: upstreamHost, port: upstreamPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    delayedPipe(upstream, client, delayMs);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', () => setTimeout(close, delayMs + 5));
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

async function main(argv: string[]): Promise<void> {
  const [host = '127.0.0.1', port = '5432', delay = '0', n = '1'] = argv;
  const ports: number[] = [];
  for (let i = 0; i < Number(n); i++) ports.push(await serve(host, Number(port), Number(delay)));
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  // Exit with the parent: it holds our stdin open.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
