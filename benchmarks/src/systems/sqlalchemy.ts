// `sqlalchemy`: SQLAlchemy's horizontal_shard on the same workload and the same data, S SQLite files, run as a Python
// subprocess (benchmarks/sqlalchemy/horizontal_shard_bench.py). Its answers come back here and are checked like ours.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PhaseName } from '../args.ts';
import type { PhaseStats } from '../stats.ts';
import { BATCH, LOOKUPS_PER_FORK, PAGE, prng, shardIndex, type ItemLike, type Workload } from '../workload.ts';

const SCRIPT = fileURLToPath(new URL('../../sqlalchemy/horizontal_shard_bench.py', import.meta.url));

interface PythonPhase {
  per_s: number;
  p50_ms: number;
  p99_ms: number;
  seconds: number;
}
interface PythonOutput {
  available: boolean;
  reason?: string;
  version?: string;
  python?: string;
  phases: Partial<Record<PhaseName, PythonPhase>>;
  peak_rss_mb: number;
  F_answers?: [number, string, number][][];
  C_answers?: number[];
}

export type SqlalchemyOutcome =
  | { available: false; reason: string }
  | {
      available: true;
      version: string;
      phases: Partial<Record<PhaseName, PhaseStats>>;
      peakRssMb: number;
      fanoutAnswers: ItemLike[][];
      counts: number[];
    };

function run(python: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  return new Promise(resolve => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    child.on('error', error => resolve({ code: null, stdout, stderr, error }));
    child.on('close', code => resolve({ code, stdout, stderr }));
  });
}

/** Runs every phase of the workload in Python. Unavailable (not an error) when Python or SQLAlchemy is missing. */
export async function runSqlalchemy(python: string, driver: string, shards: number, work: Workload, phases: readonly PhaseName[]): Promise<SqlalchemyOutcome> {
  if (driver !== 'sqlite') return { available: false, reason: 'the sqlalchemy system runs on SQLite only' };
  const dir = mkdtempSync(join(tmpdir(), 'msbench-sqla-'));
  try {
    const rnd = prng(work.seed ^ 0xa11ce);
    const probeIds = [0, 1, 2, 3, 42, 12345, ...Array.from({ length: 50 }, () => Math.floor(rnd() * 1e9))];
    const file = join(dir, 'workload.json');
    writeFileSync(
      file,
      JSON.stringify({
        dir,
        shards,
        batch: BATCH,
        page: PAGE,
        lookups_per_fork: LOOKUPS_PER_FORK,
        phases,
        scores: work.data.map(r => r.score),
        point_ids: work.pointIds,
        fanout_xs: work.fanoutXs,
        count_xs: work.countXs,
        hash_probe: probeIds.map(id => [id, shardIndex(id, shards)]),
      }),
    );
    const res = await run(python, [SCRIPT, file]);
    if (res.error) return { available: false, reason: `cannot run ${python}: ${res.error.message}` };
    if (res.code !== 0) throw new Error(`sqlalchemy system failed (exit ${res.code}):\n${res.stderr || res.stdout}`);
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as PythonOutput;
    if (!out.available) return { available: false, reason: out.reason ?? 'unavailable' };
    const stats: Partial<Record<PhaseName, PhaseStats>> = {};
    for (const [phase, p] of Object.entries(out.phases) as [PhaseName, PythonPhase][]) {
      stats[phase] = { perSecond: p.per_s, p50Ms: p.p50_ms, p99Ms: p.p99_ms, seconds: p.seconds };
    }
    return {
      available: true,
      version: `SQLAlchemy ${out.version} on Python ${out.python}`,
      phases: stats,
      peakRssMb: out.peak_rss_mb,
      fanoutAnswers: (out.F_answers ?? []).map(page => page.map(([id, name, score]) => ({ id, name, score }))),
      counts: out.C_answers ?? [],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
