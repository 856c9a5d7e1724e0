/**
 * Throwaway PostgreSQL 15 servers for fault tests: `initdb` into a fresh temp directory, `pg_ctl start` on a free
 * loopback port with trust auth, then stop (`-m immediate`: a crash as the clients see it), kill, start again on the
 * same port, and remove everything. Never the shared server at 5432.
 *
 * PostgreSQL refuses to run as root: as root the binaries run as the `postgres` OS user (`runuser`), and the temp
 * directory is given to that user. Every command has a timeout, so a test cannot hang on a server that will not
 * start or stop; a server still running when the process exits is stopped by an exit hook.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** `runuser` lives in sbin, which a root shell's PATH may leave out. */
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find(path => existsSync(path)) ?? 'runuser';
/** Each pg_ctl / initdb call is given this long before it is killed. */
const COMMAND_TIMEOUT_MS = 30_000;

export interface PgInstance extends AsyncDisposable {
  /** The loopback port it listens on (kept across restarts). */
  readonly port: number;
  /** `postgresql://postgres@127.0.0.1:<port>`: trust auth, no password. */
  readonly url: string;
  /** Whether it was started and not stopped since. */
  readonly running: boolean;
  /** Starts it (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it: `immediate` (default) drops every connection at once, as a crash would; `fast` lets it shut down cleanly. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  /** SIGKILLs the server process (the postmaster): no shutdown at all. */
  kill(): void;
  /** Stops it if running and removes its directory (also `await using`). */
  dispose(): Promise<void>;
}

export interface PgInstanceOptions {
  /** Server settings (`-c name=value`), over the defaults below, e.g. `{ max_prepared_transactions: 0 }`. */
  readonly settings?: Readonly<Record<string, string | number>>;
}

/**
 * Small and fast, yet nothing committed is lost by `stop('immediate')` or `kill()`: no fsync (only an operating
 * system crash would lose data), but synchronous commits (a commit's WAL is written before it returns). Few
 * connections; prepared transactions on (for two-phase commit tests).
 */
const DEFAULT_SETTINGS = {
  fsync: 'off',
  full_page_writes: 'off',
  max_connections: 50,
  max_prepared_transactions: 10,
  shared_buffers: '16MB',
};

const running = new Set<{ data: string; stopSync(): void }>();
process.once('exit', () => running.forEach(instance => instance.stopSync()));

/** Makes a fresh cluster in a temp directory and starts it. */
export async function startPgInstance(options: PgInstanceOptions = {}): Promise<PgInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'mos-pg-'));
  const owner = asRoot() ? postgresUser() : undefined;
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
  }
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  try {
    await run(['initdb', '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  let port = await freePort();
  let up = false;
  const serverOptions = () =>
    [`-p ${port}`, `-c listen_addresses=127.0.0.1`, `-k ${dir}`, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(' ');
  const tracked = {
    data,
    stopSync() {
      spawnSync(...command(['pg_ctl', '-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop']), { timeout: 15_000, stdio: 'ignore' });
    },
  };
  const instance: PgInstance = {
    get port() {
      return port;
    },
    get url() {
      return `postgresql://postgres@127.0.0.1:${port}`;
    },
    get running() {
      return up;
    },
    async start() {
      await run(['pg_ctl', '-D', data, '-o', serverOptions(), '-l', log, '-w', '-t', '20', 'start'], log);
      up = true;
      running.add(tracked);
    },
    async stop(mode = 'immediate') {
      await run(['pg_ctl', '-D', data, '-m', mode, '-w', '-t', '20', 'stop'], log);
      up = false;
      running.delete(tracked);
    },
    kill() {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGKILL');
      up = false;
      running.delete(tracked);
    },
    async dispose() {
      if (up || existsSync(join(data, 'postmaster.pid'))) {
        await instance.stop('immediate').catch(() => tracked.stopSync());
      }
      running.delete(tracked);
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return instance.dispose();
    },
  };
  try {
    await instance.start();
  } catch {
    // The free port may have been taken in between: one more try on another.
    port = await freePort();
    await instance.start().catch(async (error: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    });
  }
  return instance;
}

function asRoot(): boolean {
  return process.getuid?.() === 0;
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** The command line for a PostgreSQL binary, as the `postgres` user when running as root. */
function command(args: readonly string[]): [string, string[]] {
  const [binary, ...rest] = args;
  const path = join(BIN, binary!);
  return asRoot() ? [RUNUSER, ['-u', 'postgres', '--', path, ...rest]] : [path, rest];
}

function run(args: readonly string[], log?: string): Promise<void> {
  const [file, argv] = command(args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) {
        const tail = log && existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-10).join('\n') : '';
        reject(new Error(`${args.join(' ')} failed: ${error.message}\n${stderr}${stdout}\n${tail}`));
      } else {
        resolve();
      }
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
