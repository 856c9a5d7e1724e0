// Smoke test of the benchmark CLI (benchmarks/src/cli.ts) on tiny sizes: every JSON line has every key the workload
// names, with numbers > 0, and the sharded fan-out answers equal the plain system's. No timing is asserted.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import murmurhash from 'murmurhash';
import { afterAll, describe, expect, it } from 'vitest';
import { shardIndex } from '../benchmarks/src/workload.ts';

const CLI = fileURLToPath(new URL('../benchmarks/src/cli.ts', import.meta.url));
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Line = Record<string, unknown>;
const PHASES = ['W', 'P', 'F', 'C'] as const;
const NUMERIC = [
  'shards',
  'rows',
  'W_rows_per_s',
  'P_ops_per_s',
  'F_ops_per_s',
  'C_ops_per_s',
  'peak_rss_mb',
  ...PHASES.flatMap(p => [`${p}_p50_ms`, `${p}_p99_ms`]),
];

async function bench(...args: string[]): Promise<Line[]> {
  // process.execPath is the pinned Node 24 under vitest (better-sqlite3 needs it); the condition loads the library's source.
  const { stdout } = await run(process.execPath, ['--conditions=@mikro-orm-sharding/source', CLI, ...args], { timeout: 60_000, maxBuffer: 16 << 20 });
  return stdout
    .trim()
    .split('\n')
    .map(l => JSON.parse(l) as Line);
}

describe('benchmark CLI (sqlite, tiny sizes)', () => {
  it('prints one complete JSON line per system, with equal fan-out answers', { timeout: 60_000 }, async () => {
    const chart = join(dir, 'chart.svg');
    const lines = await bench(
      '--driver',
      'sqlite',
      '--shards',
      '4',
      '--rows',
      '300',
      '--points',
      '50',
      '--fanouts',
      '10',
      '--systems',
      'sharded,plain,handrolled,sqlalchemy',
      '--json',
      '--no-warmup',
      '--chart',
      chart,
    );
    const bySystem = new Map(lines.map(l => [l.system, l]));
    expect([...bySystem.keys()].sort()).toEqual(['handrolled', 'plain', 'sharded', 'sqlalchemy']);
    for (const line of lines) {
      // SQLAlchemy is optional: without python3-sqlalchemy it is reported unavailable, not a crash.
      if (line.system === 'sqlalchemy' && line.available === false) {
        expect(line.reason).toEqual(expect.any(String));
        continue;
      }
      expect(line.driver).toBe('sqlite');
      for (const key of NUMERIC) {
        expect(line[key], `${line.system}.${key}`).toEqual(expect.any(Number));
        expect(line[key] as number, `${line.system}.${key}`).toBeGreaterThan(0);
      }
      expect(line.rows).toBe(300);
      expect(line.F_verified, `${line.system} F answers checked`).toBe(true);
      expect(line.C_verified, `${line.system} C answers checked`).toBe(true);
      expect(line.F_answers_checksum).toMatch(/^[0-9a-f]{8}$/);
    }
    const sharded = bySystem.get('sharded')!;
    const plain = bySystem.get('plain')!;
    expect(sharded.shards).toBe(4);
    expect(sharded.strategy).toBe('modulo');
    expect(plain.shards).toBe(1);
    expect(sharded.F_answers_checksum).toBe(plain.F_answers_checksum);
    expect(sharded.C_answers_checksum).toBe(plain.C_answers_checksum);
    expect(bySystem.get('handrolled')!.F_answers_checksum).toBe(plain.F_answers_checksum);
    const svg = readFileSync(chart, 'utf8');
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('sharded');
  });

  it('times transactions: phase T on every system, phase X per mode on the sharded one, each row read back', { timeout: 60_000 }, async () => {
    const lines = await bench(
      ...'--driver sqlite --shards 3 --rows 300 --points 5 --fanouts 2 --txs 20 --phases T,X --systems sharded,plain,handrolled --json --no-warmup'.split(' '),
    );
    const bySystem = new Map(lines.map(l => [l.system, l]));
    for (const system of ['sharded', 'plain', 'handrolled']) {
      expect(bySystem.get(system)!.T_ops_per_s, `${system} T`).toBeGreaterThan(0);
    }
    const sharded = bySystem.get('sharded')!;
    for (const mode of ['single', 'multi']) {
      expect(sharded[`X_${mode}_ops_per_s`], mode).toBeGreaterThan(0);
      expect(sharded[`X_${mode}_p99_ms`], mode).toBeGreaterThan(0);
    }
    expect(sharded.tx_span).toBe(3);
    expect(bySystem.get('plain')!.X_multi_ops_per_s).toBeUndefined();
  });

  it('routes by murmurhash3_32(String(id), 0) % S exactly as the workload defines it', () => {
    for (let id = 0; id < 5000; id += 7) {
      for (const shards of [1, 4, 32]) {
        expect(shardIndex(id, shards)).toBe(murmurhash.v3(String(id), 0) % shards);
      }
    }
  });

  it('routes the sharded system by a shardBy strategy with --strategy, with the same answers', { timeout: 60_000 }, async () => {
    const common = ['--driver', 'sqlite', '--rows', '200', '--points', '40', '--fanouts', '5', '--systems', 'sharded,plain', '--json', '--no-warmup'];
    for (const strategy of ['hash', 'jump', 'range']) {
      const lines = await bench(...common, '--shards', '3', '--strategy', strategy);
      const sharded = lines.find(line => line.system === 'sharded')!;
      const plain = lines.find(line => line.system === 'plain')!;
      expect(sharded.strategy).toBe(strategy);
      expect(plain.strategy).toBeUndefined();
      expect(sharded.P_ops_per_s as number).toBeGreaterThan(0);
      expect(sharded.F_answers_checksum).toBe(plain.F_answers_checksum);
      expect(sharded.C_answers_checksum).toBe(plain.C_answers_checksum);
    }
  });

  it('--registry: lookups on album files added at run time, cold and hot, never more open than --max-open', { timeout: 60_000 }, async () => {
    const [line, ...more] = await bench(...'--registry --registry-shards 30 --max-open 4 --points 20 --json'.split(' '));
    expect(more).toEqual([]);
    expect(line).toMatchObject({ mode: 'registry', driver: 'sqlite', shards: 30, max_open_shards: 4, open_after_cold: 4, open_after_hot: 4 });
    for (const key of [
      'cold_lookups_per_s',
      'cold_p50_ms',
      'cold_p99_ms',
      'hot_lookups_per_s',
      'hot_p50_ms',
      'hot_p99_ms',
      'open_query_close_ms',
      'add_shard_us',
    ]) {
      expect(line![key], key).toBeGreaterThan(0);
    }
  });

  it('rejects unknown options with a usage message and exit code 2', async () => {
    await expect(bench('--no-such-option')).rejects.toMatchObject({ code: 2 });
    await expect(bench('--strategy', 'modular')).rejects.toMatchObject({ code: 2 });
    await expect(bench('--strategy', 'hash', '--systems', 'plain')).rejects.toMatchObject({ code: 2 });
  });
});
