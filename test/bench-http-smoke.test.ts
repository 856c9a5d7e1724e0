// Smoke test of the HTTP benchmark (benchmarks/src/http.ts) on tiny sizes: it starts both servers, checks their
// answers, loads each for a second on loopback, stops them and prints one JSON line per framework. No timing is
// asserted; bad options exit with code 2.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../benchmarks/src/http.ts', import.meta.url));
const run = promisify(execFile);

function bench(...args: string[]) {
  // process.execPath is the pinned Node 24 under vitest; the condition loads the library's source.
  return run(process.execPath, ['--conditions=@mikro-orm-sharding/source', CLI, ...args], { timeout: 60_000, maxBuffer: 1 << 20 });
}

describe('HTTP benchmark CLI (sqlite, tiny sizes)', () => {
  it('measures the sharded middleware beside plain MikroORM, one JSON line per framework (Fastify here)', async () => {
    const { stdout } = await bench(
      '--json',
      '--duration',
      '1',
      '--runs',
      '1',
      '--rows',
      '20',
      '--shards',
      '2',
      '--connections',
      '2',
      '--frameworks',
      'fastify',
    );
    const lines = stdout
      .trim()
      .split('\n')
      .map(line => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map(line => line.framework)).toEqual(['fastify']);
    for (const line of lines) {
      expect(line).toMatchObject({ driver: 'sqlite', shards: 2, rows: 20, duration_s: 1, connections: 2 });
      for (const key of ['sharded_rps', 'plain_rps', 'ratios']) {
        expect(line[key]).toHaveLength(1);
        expect((line[key] as number[])[0]).toBeGreaterThan(0);
      }
    }
  });

  it('refuses bad options with a usage message and exit code 2', async () => {
    const error = (await bench('--frameworks', 'koa').catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(error.code).toBe(2);
    expect(error.stderr).toMatch(/--frameworks takes node, express, fastify[\s\S]*Usage: pnpm bench:http/);
  });
});
