// One run: every system on fresh databases, phase by phase (W for all systems, then P for all, ...), every answer
// checked against the in-memory truth. Returns one result (one JSON line) per system.
import type { Args, PhaseName, SystemName, TxMode } from './args.ts';
import type { Databases } from './databases.ts';
import type { Progress } from './progress.ts';
import { markRss, peakRssMb, round, sampleRss, timePhase, type PhaseStats } from './stats.ts';
import { openHandrolled } from './systems/handrolled.ts';
import { openPlain } from './systems/plain.ts';
import { openSharded } from './systems/sharded.ts';
import { runSqlalchemy } from './systems/sqlalchemy.ts';
import type { LookupSession, System, SystemContext } from './systems/system.ts';
import { BATCH, Checksum, LOOKUPS_PER_FORK, PAGE, deepXs, transactionIds, type ItemLike, type Truth, type Workload } from './workload.ts';

export type Result = Record<string, string | number | boolean | null>;

export const UNIT_KEY: Record<PhaseName, string> = {
  W: 'W_rows_per_s',
  P: 'P_ops_per_s',
  F: 'F_ops_per_s',
  C: 'C_ops_per_s',
  D: 'D_ops_per_s',
  T: 'T_ops_per_s',
  'X-single': 'X_single_ops_per_s',
  'X-multi': 'X_multi_ops_per_s',
  'X-twopc': 'X_twopc_ops_per_s',
};

/** The prefix of a phase's latency keys: `T_p50_ms`, `X_twopc_p99_ms`. */
export const keyOf = (phase: PhaseName) => phase.replace('-', '_');

/** Whether a system runs a phase: X is the sharded system's alone (it changes rows on several shards). */
export const runsPhase = (system: string, phase: PhaseName) =>
  phase === 'D' ? system === 'sharded' || system === 'plain' : !phase.startsWith('X-') || system === 'sharded';

export interface RunPlan {
  args: Args;
  shards: number;
  work: Workload;
  truth: Truth;
  run: number | 'warmup';
  systems: SystemName[];
  phases: PhaseName[];
  progress: Progress;
}

const OPENERS: Record<Exclude<SystemName, 'sqlalchemy'>, (ctx: SystemContext) => Promise<System>> = {
  sharded: openSharded,
  plain: openPlain,
  handrolled: openHandrolled,
};

interface Tally {
  result: Result;
  rss: number;
  fanoutSum: Checksum;
  countSum: Checksum;
  /** How much phases T and X raised each row's score. */
  raised: Map<number, number>;
}

function phaseKeys(result: Result, phase: PhaseName, stats: PhaseStats): void {
  result[UNIT_KEY[phase]] = round(stats.perSecond, 1);
  result[`${keyOf(phase)}_p50_ms`] = round(stats.p50Ms, 3);
  result[`${keyOf(phase)}_p99_ms`] = round(stats.p99Ms, 3);
}

/** Phases T and X: the transactions, then a check that each changed row holds its score plus what they added. */
async function timeTransactions(plan: RunPlan, sys: System, phase: PhaseName, tally: Tally, label: string): Promise<PhaseStats> {
  const { work, progress } = plan;
  const mode = phase === 'T' ? undefined : (phase.slice(2) as TxMode);
  const span = phase === 'T' ? 1 : (plan.args.txSpan ?? plan.shards);
  const groups = transactionIds(work, plan.shards, span, mode === 'single', phase === 'T' ? 0x7a : 0x7b + (mode?.length ?? 0));
  progress.start(label, groups.length);
  const stats = await timePhase(groups.length, groups.length, i => sys.transaction(groups[i]!, mode), progress.tick);
  groups.flat().forEach(id => tally.raised.set(id, (tally.raised.get(id) ?? 0) + 1));
  const session = sys.session();
  for (const [id, raised] of [...tally.raised].slice(0, 200)) {
    const item = await session.findById(id);
    if (item?.score !== work.data[id]!.score + raised) {
      throw new Error(`${sys.name} ${phase}: row ${id} has score ${item?.score}, expected ${work.data[id]!.score + raised}`);
    }
  }
  if (mode !== undefined) tally.result.tx_span = span;
  return stats;
}

function baseResult(plan: RunPlan, system: string, databases: number): Result {
  const { args, work } = plan;
  return {
    system,
    driver: args.driver,
    shards: databases,
    rows: work.rows,
    points: work.points,
    fanouts: work.fanouts,
    seed: work.seed,
    run: plan.run === 'warmup' ? -1 : plan.run,
    ...(system === 'sharded' ? { strategy: args.strategy } : {}),
    ...(args.latency !== undefined ? { latency_ms: args.latency } : {}),
    ...(args.deepPage !== undefined && plan.phases.includes('D') ? { deep_offset: args.deepPage } : {}),
  };
}

/** Checks a phase's answers (after timing) and folds them into the run's checksums. */
function checkFanouts(plan: RunPlan, who: string, answers: ItemLike[][], xs: number[], offset: number, sum: Checksum): void {
  answers.forEach((page, i) => {
    plan.truth.check(who, page, xs[i]!, offset, PAGE);
    sum.add(page.length);
    sum.addAll(page.map(item => item.score));
  });
}
function checkCounts(plan: RunPlan, who: string, counts: number[], xs: number[], sum: Checksum): void {
  counts.forEach((n, i) => {
    const want = plan.truth.count(xs[i]!);
    if (n !== want) throw new Error(`${who}: count of score >= ${xs[i]} is ${n}, expected ${want}`);
    sum.add(n);
  });
}

async function runPhase(plan: RunPlan, sys: System, phase: PhaseName, tally: Tally): Promise<void> {
  const { work, progress } = plan;
  const label = `${plan.run === 'warmup' ? 'warm-up' : `run ${plan.run + 1}/${plan.args.repeat}`} · ${phase} · ${sys.name}`;
  let stats: PhaseStats;
  markRss();
  if (phase === 'W') {
    const batches = Math.ceil(work.rows / BATCH);
    progress.start(label, batches);
    stats = await timePhase(batches, work.rows, i => sys.insertBatch(work.data.slice(i * BATCH, (i + 1) * BATCH)), progress.tick);
  } else if (phase === 'P') {
    progress.start(label, work.points);
    let session: LookupSession | undefined;
    stats = await timePhase(
      work.points,
      work.points,
      async i => {
        if (i % LOOKUPS_PER_FORK === 0) session = sys.session();
        const id = work.pointIds[i]!;
        const item = await session!.findById(id);
        if (!item || item.id !== id || item.score !== work.data[id]!.score) {
          throw new Error(`${sys.name}: lookup of id ${id} did not find its row (got ${JSON.stringify(item)})`);
        }
      },
      progress.tick,
    );
  } else if (phase === 'F' || phase === 'D') {
    const offset = phase === 'D' ? plan.args.deepPage! : 0;
    const xs = phase === 'D' ? deepXs(work, plan.truth, offset + PAGE, work.fanouts) : work.fanoutXs;
    const answers: ItemLike[][] = new Array(xs.length);
    progress.start(label, xs.length);
    stats = await timePhase(xs.length, xs.length, async i => void (answers[i] = await sys.topPage(xs[i]!, offset, PAGE)), progress.tick);
    const sum = phase === 'F' ? tally.fanoutSum : new Checksum();
    checkFanouts(plan, `${sys.name} ${phase}`, answers, xs, offset, sum);
    if (phase === 'D') tally.result.D_answers_checksum = sum.hex();
  } else if (phase === 'T' || phase.startsWith('X-')) {
    stats = await timeTransactions(plan, sys, phase, tally, label);
  } else {
    const counts: number[] = new Array(work.countXs.length);
    progress.start(label, counts.length);
    stats = await timePhase(counts.length, counts.length, async i => void (counts[i] = await sys.count(work.countXs[i]!)), progress.tick);
    checkCounts(plan, `${sys.name} C`, counts, work.countXs, tally.countSum);
  }
  sampleRss();
  tally.rss = Math.max(tally.rss, peakRssMb());
  phaseKeys(tally.result, phase, stats);
}

/** Runs the plan; rotates the system order from run to run so no system always goes first. */
export async function runOnce(plan: RunPlan, dbs: Databases): Promise<Result[]> {
  const inProcess = plan.systems.filter((s): s is Exclude<SystemName, 'sqlalchemy'> => s !== 'sqlalchemy');
  const shift = plan.run === 'warmup' ? 0 : plan.run % Math.max(1, inProcess.length);
  const order = [...inProcess.slice(shift), ...inProcess.slice(0, shift)];
  const opened: System[] = [];
  const tallies = new Map<System, Tally>();
  try {
    for (const name of order) {
      plan.progress.start(`opening ${name} (${plan.shards} shards)`, 1);
      const sys = await OPENERS[name]({
        dbs,
        shards: plan.shards,
        strategy: plan.args.strategy,
        rows: plan.work.rows,
        twoPhase: plan.phases.includes('X-twopc'),
      });
      opened.push(sys);
      const tally = { result: baseResult(plan, sys.name, sys.databases), rss: 0, fanoutSum: new Checksum(), countSum: new Checksum(), raised: new Map() };
      tallies.set(sys, tally);
    }
    for (const phase of plan.phases) {
      for (const sys of opened) {
        if (!runsPhase(sys.name, phase)) continue;
        await runPhase(plan, sys, phase, tallies.get(sys)!);
      }
    }
  } finally {
    for (const sys of opened) await sys.close();
  }
  const results: Result[] = [];
  for (const sys of opened) {
    const t = tallies.get(sys)!;
    if (plan.phases.includes('F')) Object.assign(t.result, { F_answers_checksum: t.fanoutSum.hex(), F_verified: true });
    if (plan.phases.includes('C')) Object.assign(t.result, { C_answers_checksum: t.countSum.hex(), C_verified: true });
    results.push({ ...t.result, peak_rss_mb: t.rss });
  }
  if (plan.systems.includes('sqlalchemy')) results.push(await runPython(plan));
  results.sort((a, b) => plan.systems.indexOf(a.system as SystemName) - plan.systems.indexOf(b.system as SystemName));
  return results;
}

async function runPython(plan: RunPlan): Promise<Result> {
  plan.progress.start(`${plan.run === 'warmup' ? 'warm-up' : `run ${Number(plan.run) + 1}`} · sqlalchemy (python, all phases)`, 1);
  const phases = plan.phases.filter(p => p === 'W' || p === 'P' || p === 'F' || p === 'C');
  const out = await runSqlalchemy(plan.args.python, plan.args.driver, plan.shards, plan.work, phases);
  const result = baseResult(plan, 'sqlalchemy', plan.shards);
  delete result.deep_offset;
  if (!out.available) return { ...result, available: false, reason: out.reason };
  for (const phase of phases) if (out.phases[phase]) phaseKeys(result, phase, out.phases[phase]);
  if (phases.includes('F')) {
    const sum = new Checksum();
    checkFanouts(plan, 'sqlalchemy F', out.fanoutAnswers, plan.work.fanoutXs, 0, sum);
    Object.assign(result, { F_answers_checksum: sum.hex(), F_verified: true });
  }
  if (phases.includes('C')) {
    const sum = new Checksum();
    checkCounts(plan, 'sqlalchemy C', out.counts, plan.work.countXs, sum);
    Object.assign(result, { C_answers_checksum: sum.hex(), C_verified: true });
  }
  return { ...result, peak_rss_mb: round(out.peakRssMb, 1), version: out.version };
}

/** Throws loudly when two systems' answers differ (each was already checked against the truth). */
export function assertSameAnswers(results: readonly Result[]): void {
  for (const key of ['F_answers_checksum', 'C_answers_checksum', 'D_answers_checksum']) {
    const seen = results.filter(r => r[key] !== undefined);
    const first = seen[0];
    for (const r of seen) {
      if (r[key] !== first![key]) {
        throw new Error(`ANSWERS DIFFER: ${key} of ${r.system} is ${r[key]}, of ${first!.system} ${first![key]}`);
      }
    }
  }
}
