// --scale: the sharded system's P and F phases at each shard count, and their ratio to the first count (S=1).
import { writeFileSync } from 'node:fs';
import type { Args, PhaseName } from './args.ts';
import { renderChart } from './chart.ts';
import type { Databases } from './databases.ts';
import type { Progress } from './progress.ts';
import { runOnce, UNIT_KEY, type Result } from './run.ts';
import { median, round } from './stats.ts';
import { fmt, renderTable } from './table.ts';
import { makeWorkload, Truth } from './workload.ts';
import { describe, warmUp } from './compare.ts';

export async function scale(args: Args, dbs: Databases, progress: Progress, emit: (line: Result) => void): Promise<string> {
  const counts = args.scale!;
  const phases: PhaseName[] = ['W', 'P', 'F'];
  const sargs: Args = { ...args, phases, systems: ['sharded'] };
  const work = makeWorkload(args, args.seed);
  const truth = new Truth(work.data);
  if (args.warmup) await warmUp(sargs, dbs, progress, counts[0]!);
  // byS[S][run] = result
  const byS = new Map<number, Result[]>(counts.map((s) => [s, []]));
  for (let run = 0; run < args.repeat; run++) {
    // Rotate the order of shard counts from run to run so none always goes first.
    for (const S of [...counts.slice(run % counts.length), ...counts.slice(0, run % counts.length)]) {
      const [r] = await runOnce({ args: sargs, shards: S, work, truth, run, systems: ['sharded'], phases, progress }, dbs);
      const line = { ...r!, mode: 'scale' };
      byS.get(S)!.push(line);
      emit(line);
    }
  }
  progress.end();
  const base = counts[0]!;
  const rel = (S: number, p: PhaseName) =>
    median(byS.get(S)!.map((r, i) => Number(r[UNIT_KEY[p]]) / Number(byS.get(base)![i]![UNIT_KEY[p]])));
  const med = (S: number, key: string) => median(byS.get(S)!.map((r) => Number(r[key])));
  if (args.repeat > 1) {
    for (const S of counts) {
      emit({
        system: 'sharded', mode: 'scale', driver: args.driver, shards: S, rows: args.rows, run: 'median', runs: args.repeat,
        P_ops_per_s: round(med(S, 'P_ops_per_s'), 1), F_ops_per_s: round(med(S, 'F_ops_per_s'), 1),
        P_vs_first: round(rel(S, 'P'), 3), F_vs_first: round(rel(S, 'F'), 3),
      });
    }
  }
  const rows = counts.map((S) => [
    String(S),
    fmt(med(S, 'P_ops_per_s')),
    fmt(rel(S, 'P')),
    `${fmt(med(S, 'P_p50_ms'), 3)} / ${fmt(med(S, 'P_p99_ms'), 3)}`,
    fmt(med(S, 'F_ops_per_s')),
    fmt(rel(S, 'F')),
    `${fmt(med(S, 'F_p50_ms'), 3)} / ${fmt(med(S, 'F_p99_ms'), 3)}`,
  ]);
  const title = `sharded at each shard count · ${describe(args, base).replace(/ · S=\d+/, '')} · ${args.repeat > 1 ? `median of ${args.repeat} runs` : '1 run'}`;
  if (args.chart) {
    writeFileSync(
      args.chart,
      renderChart({
        title: 'mikro-orm-sharding: lookups and fan-out by shard count',
        subtitle: `${describe(args, base).replace(/ · S=\d+/, '')} · higher is better`,
        groups: counts.map((S) => `S=${S}`),
        groupNotes: counts.map((S) => `P ${fmt(rel(S, 'P'))}× · F ${fmt(rel(S, 'F'))}×\nof S=${base}`),
        series: ['P find by id', 'F top-20 fan-out'],
        values: counts.map((S) => [med(S, 'P_ops_per_s'), med(S, 'F_ops_per_s')]),
        yLabel: 'operations per second',
        log: true,
      }),
    );
  }
  return [
    title,
    '',
    renderTable(['shards', 'P lookups/s', `P vs S=${base}`, 'P p50 / p99 ms', 'F queries/s', `F vs S=${base}`, 'F p50 / p99 ms'], rows),
  ].join('\n');
}
