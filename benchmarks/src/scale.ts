// --scale: the sharded system's P and F phases at each shard count, and their ratio to the first count (S=1).
// When --systems includes handrolled (the default does), it runs beside at each count on its own databases, as a
// reference: it tells the database side of a change (more, smaller databases) from the library's routing cost.
import { writeFileSync } from 'node:fs';
import type { Args, PhaseName, SystemName } from './args.ts';
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
  const systems: SystemName[] = args.systems.includes('handrolled') ? ['sharded', 'handrolled'] : ['sharded'];
  const sargs: Args = { ...args, phases, systems };
  const work = makeWorkload(args, args.seed);
  const truth = new Truth(work.data);
  if (args.warmup) await warmUp(sargs, dbs, progress, counts[0]!);
  // results.get(`${system}@${S}`)[run]
  const results = new Map<string, Result[]>();
  for (let run = 0; run < args.repeat; run++) {
    // Rotate the order of shard counts from run to run so none always goes first.
    for (const S of [...counts.slice(run % counts.length), ...counts.slice(0, run % counts.length)]) {
      for (const r of await runOnce({ args: sargs, shards: S, work, truth, run, systems, phases, progress }, dbs)) {
        const line = { ...r, mode: 'scale' };
        const key = `${r.system}@${S}`;
        results.set(key, [...(results.get(key) ?? []), line]);
        emit(line);
      }
    }
  }
  progress.end();
  const base = counts[0]!;
  const of = (sys: string, S: number) => results.get(`${sys}@${S}`) ?? [];
  /** Median over runs of (value at S / value at the first count), per run. */
  const rel = (sys: string, S: number, p: PhaseName) => median(of(sys, S).map((r, i) => Number(r[UNIT_KEY[p]]) / Number(of(sys, base)[i]![UNIT_KEY[p]])));
  /** Median over runs of sharded / handrolled at the same count. */
  const vsHand = (S: number, p: PhaseName) => median(of('sharded', S).map((r, i) => Number(r[UNIT_KEY[p]]) / Number(of('handrolled', S)[i]![UNIT_KEY[p]])));
  const med = (sys: string, S: number, key: string) => median(of(sys, S).map(r => Number(r[key])));
  const hand = systems.includes('handrolled');
  if (args.repeat > 1) {
    for (const sys of systems) {
      for (const S of counts) {
        emit({
          system: sys,
          mode: 'scale',
          driver: args.driver,
          shards: S,
          rows: args.rows,
          run: 'median',
          runs: args.repeat,
          P_ops_per_s: round(med(sys, S, 'P_ops_per_s'), 1),
          F_ops_per_s: round(med(sys, S, 'F_ops_per_s'), 1),
          P_vs_first: round(rel(sys, S, 'P'), 3),
          F_vs_first: round(rel(sys, S, 'F'), 3),
        });
      }
    }
  }
  const head = ['shards', 'P lookups/s', `P vs S=${base}`, 'P p50 / p99 ms', 'F queries/s', `F vs S=${base}`, 'F p50 / p99 ms'];
  if (hand) head.push('hand P/s', `hand P vs S=${base}`, 'hand F/s', 'sharded/hand P', 'sharded/hand F');
  const rows = counts.map(S => [
    String(S),
    fmt(med('sharded', S, 'P_ops_per_s')),
    fmt(rel('sharded', S, 'P')),
    `${fmt(med('sharded', S, 'P_p50_ms'), 3)} / ${fmt(med('sharded', S, 'P_p99_ms'), 3)}`,
    fmt(med('sharded', S, 'F_ops_per_s')),
    fmt(rel('sharded', S, 'F')),
    `${fmt(med('sharded', S, 'F_p50_ms'), 3)} / ${fmt(med('sharded', S, 'F_p99_ms'), 3)}`,
    ...(hand
      ? [
          fmt(med('handrolled', S, 'P_ops_per_s')),
          fmt(rel('handrolled', S, 'P')),
          fmt(med('handrolled', S, 'F_ops_per_s')),
          fmt(vsHand(S, 'P')),
          fmt(vsHand(S, 'F')),
        ]
      : []),
  ]);
  const what = describe(args, base).replace(/ · S=\d+/, '');
  const runsText = args.repeat > 1 ? `median of ${args.repeat} runs` : '1 run';
  if (args.chart) {
    writeFileSync(
      args.chart,
      renderChart({
        title: 'mikro-orm-sharding: lookups and fan-out by shard count',
        subtitle: `${what} · ${runsText} · higher is better`,
        groups: counts.map(S => `S=${S}`),
        groupNotes: counts.map(S => `sharded P ${fmt(rel('sharded', S, 'P'))}×\nsharded F ${fmt(rel('sharded', S, 'F'))}×`),
        footer: `group notes: sharded throughput relative to S=${base} · pnpm bench -- ${process.argv
          .slice(2)
          .filter(a => a !== '--')
          .join(' ')}`,
        series: hand ? ['sharded P', 'handrolled P', 'sharded F', 'handrolled F'] : ['sharded P', 'sharded F'],
        values: counts.map(S =>
          hand
            ? [med('sharded', S, 'P_ops_per_s'), med('handrolled', S, 'P_ops_per_s'), med('sharded', S, 'F_ops_per_s'), med('handrolled', S, 'F_ops_per_s')]
            : [med('sharded', S, 'P_ops_per_s'), med('sharded', S, 'F_ops_per_s')],
        ),
        colors: hand ? ['#2563eb', '#93c5fd', '#f59e0b', '#fcd34d'] : ['#2563eb', '#f59e0b'],
        yLabel: 'operations per second',
        log: true,
      }),
    );
  }
  const note = hand ? '\nhand = handrolled at the same shard count on its own databases (the database side of the change).' : '';
  return [`sharded at each shard count · ${what} · ${runsText}`, '', renderTable(head, rows), note].join('\n');
}
