// The default mode: every chosen system side by side, phases W P F C (and D with --deep-page), --repeat times.
import { writeFileSync } from 'node:fs';
import type { Args } from './args.ts';
import { renderChart } from './chart.ts';
import type { Databases } from './databases.ts';
import type { Progress } from './progress.ts';
import { assertSameAnswers, runOnce, UNIT_KEY, type Result } from './run.ts';
import { compareTable, fmt, medians, PHASE_LABEL, ratio, UNIT_LABEL } from './table.ts';
import { makeWorkload, Truth } from './workload.ts';

export function describe(args: Args, shards: number): string {
  const lat = args.latency !== undefined ? ` · +${args.latency} ms per round trip (proxy)` : '';
  const routed = args.strategy === 'modulo' ? '' : ` · sharded by shardBy ${args.strategy}`;
  return `${args.driver} · S=${shards} · ${args.rows.toLocaleString('en-US')} rows · ${args.points} lookups · ${args.fanouts} queries${lat}${routed}`;
}

/** The small untimed run that warms the JIT and the drivers up before anything is measured. */
export async function warmUp(args: Args, dbs: Databases, progress: Progress, shards: number, systems = args.systems) {
  const work = makeWorkload(
    { rows: Math.min(args.rows, 2000), points: Math.min(args.points, 1000), fanouts: Math.min(args.fanouts, 50), txs: Math.min(args.txs, 100) },
    args.seed + 1,
  );
  const phases = args.phases;
  await runOnce({ args, shards, work, truth: new Truth(work.data), run: 'warmup', systems: systems.filter(s => s !== 'sqlalchemy'), phases, progress }, dbs);
}

export async function compare(args: Args, dbs: Databases, progress: Progress, emit: (line: Result) => void): Promise<string> {
  const work = makeWorkload(args, args.seed);
  const truth = new Truth(work.data);
  if (args.warmup) await warmUp(args, dbs, progress, args.shards);
  const runs: Result[][] = [];
  for (let run = 0; run < args.repeat; run++) {
    const results = await runOnce({ args, shards: args.shards, work, truth, run, systems: args.systems, phases: args.phases, progress }, dbs);
    assertSameAnswers(results);
    runs.push(results);
    for (const r of results) emit(r);
  }
  progress.end();
  if (args.repeat > 1) for (const r of medians(runs)) emit(r);
  const title = `mikro-orm-sharding benchmark · ${describe(args, args.shards)} · ${args.repeat > 1 ? `median of ${args.repeat} runs` : '1 run'}`;
  if (args.chart) writeFileSync(args.chart, chartOf(args, runs));
  return compareTable(runs, args.phases, title);
}

function chartOf(args: Args, runs: Result[][]): string {
  const meds = medians(runs).filter(r => r.available !== false);
  const series = meds.map(r => String(r.system));
  const others = series.filter(s => s !== 'sharded');
  const phases = args.phases;
  return renderChart({
    title: `mikro-orm-sharding vs ${others.join(', ')}`,
    subtitle: `${describe(args, args.shards)}${args.repeat > 1 ? ` · median of ${args.repeat} runs` : ''} · higher is better`,
    groups: phases.map(p => `${PHASE_LABEL[p]} (${UNIT_LABEL[p]})`),
    groupNotes: phases.map(p =>
      others
        .map(o => {
          const r = ratio(runs, 'sharded', o, p);
          if (r === undefined) return '';
          return p === 'D' ? `time sharded/${o}: ${fmt(r)}` : `sharded/${o}: ${fmt(r)}×`;
        })
        .filter(Boolean)
        .join('\n'),
    ),
    series,
    values: phases.map(p => meds.map(r => (typeof r[UNIT_KEY[p]] === 'number' ? (r[UNIT_KEY[p]] as number) : undefined))),
    yLabel: 'operations per second (rows/s for W)',
    log: true,
    footer: `node ${process.version} · MikroORM 7.2.1 · ${new Date().toISOString().slice(0, 10)} · pnpm bench -- ${process.argv
      .slice(2)
      .filter(a => a !== '--')
      .join(' ')}`,
  });
}
