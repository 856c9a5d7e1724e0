// Medians over runs, side-by-side ratios, and the plain-text tables printed without --json.
import type { PhaseName } from './args.ts';
import type { Result } from './run.ts';
import { keyOf, UNIT_KEY } from './run.ts';
import { median } from './stats.ts';

export const UNIT_LABEL: Record<PhaseName, string> = {
  W: 'rows/s',
  P: 'lookups/s',
  F: 'queries/s',
  C: 'counts/s',
  D: 'queries/s',
  T: 'tx/s',
  'X-single': 'tx/s',
  'X-multi': 'tx/s',
  'X-twopc': 'tx/s',
};
export const PHASE_LABEL: Record<PhaseName, string> = {
  W: 'W insert',
  P: 'P find by id',
  F: 'F top-20 fan-out',
  C: 'C count',
  D: 'D deep page',
  T: 'T one-shard transaction',
  'X-single': 'X single (one shard)',
  'X-multi': 'X multi',
  'X-twopc': 'X twopc',
};

/** Per system, the median of every numeric key over the runs (other keys from the first run). */
export function medians(runs: readonly Result[][]): Result[] {
  const first = runs[0] ?? [];
  return first.map(r0 => {
    const same = runs.map(run => run.find(r => r.system === r0.system)).filter((r): r is Result => r !== undefined);
    const out: Result = { ...r0, run: 'median', runs: same.length };
    for (const [key, value] of Object.entries(r0)) {
      if (typeof value === 'number' && key !== 'run') out[key] = median(same.map(r => Number(r[key])));
    }
    return out;
  });
}

/**
 * The ratio `a`/`b` of a phase's throughput, computed inside each run (side by side) and then the median over runs.
 * For D (deep page) it is the time ratio a-time / b-time, as the goal is stated.
 */
export function ratio(runs: readonly Result[][], a: string, b: string, phase: PhaseName): number | undefined {
  const per = ratios(runs, a, b, phase);
  return per.length ? median(per) : undefined;
}

/** The per-run ratios behind {@link ratio}. */
export function ratios(runs: readonly Result[][], a: string, b: string, phase: PhaseName): number[] {
  const key = UNIT_KEY[phase];
  return runs
    .map(run => {
      const x = run.find(r => r.system === a)?.[key];
      const y = run.find(r => r.system === b)?.[key];
      if (typeof x !== 'number' || typeof y !== 'number' || !(x > 0) || !(y > 0)) return undefined;
      return phase === 'D' ? y / x : x / y;
    })
    .filter((v): v is number => v !== undefined);
}

/** `0.85` for one run, `0.85 (0.71-1.02)` (median, then min-max over runs) for several. */
function ratioCell(runs: readonly Result[][], a: string, b: string, phase: PhaseName): string {
  const per = ratios(runs, a, b, phase);
  if (per.length === 0) return '–';
  const mid = fmt(median(per));
  return per.length > 1 ? `${mid} (${fmt(Math.min(...per))}-${fmt(Math.max(...per))})` : mid;
}

export function fmt(n: unknown, digits?: number): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** A plain text table; the first column is left-aligned, the others right-aligned. */
export function renderTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The main table: ops/s per phase and system, then the ratios of sharded to each other system. */
export function compareTable(runs: readonly Result[][], phases: readonly PhaseName[], title: string): string {
  const meds = medians(runs);
  const available = meds.filter(r => r.available !== false);
  const systems = available.map(r => String(r.system));
  const others = systems.filter(s => s !== 'sharded');
  const hasSharded = systems.includes('sharded');
  const head = ['phase', 'unit', ...systems, ...(hasSharded ? others.map(o => `sharded/${o}`) : [])];
  const rows = phases.map(phase => [
    PHASE_LABEL[phase],
    UNIT_LABEL[phase],
    ...available.map(r => fmt(r[UNIT_KEY[phase]])),
    ...(hasSharded ? others.map(o => ratioCell(runs, 'sharded', o, phase)) : []),
  ]);
  const lat = phases.map(phase => [
    `${phase} p50 / p99 ms`,
    '',
    ...available.map(r => `${fmt(r[`${keyOf(phase)}_p50_ms`], 3)} / ${fmt(r[`${keyOf(phase)}_p99_ms`], 3)}`),
  ]);
  const rss = ['peak RSS MB', '', ...available.map(r => fmt(r.peak_rss_mb, 0))];
  const notes: string[] = [];
  for (const r of meds) if (r.available === false) notes.push(`${r.system}: unavailable (${r.reason})`);
  if (runs.length > 1) notes.push(`Ratios: median of the ${runs.length} per-run ratios (min-max over runs).`);
  if (phases.includes('D')) notes.push('D ratio is a TIME ratio: sharded time per query / plain time per query (lower is better).');
  if (phases.some(p => p.startsWith('X-'))) {
    const span = available.find(r => r.tx_span !== undefined)?.tx_span;
    notes.push(`X: each transaction changes ${span} rows, one per shard (all on one shard in mode single); sharded only.`);
  }
  const checked = phases.filter(p => p !== 'W' && p !== 'P' && p !== 'T' && !p.startsWith('X-'));
  if (checked.length)
    notes.push(`${checked.join(', ')} answers checked against the data for every system, and equal across systems; every P lookup found its row.`);
  if (phases.includes('T') || phases.some(p => p.startsWith('X-'))) notes.push('T and X: every row they changed was read back with its new score.');
  return [title, '', renderTable(head, [...rows, ...lat.map(l => l.concat(others.map(() => ''))), rss]), ...(notes.length ? ['', ...notes] : [])].join('\n');
}
