// Small statistics: medians, percentiles, a phase timer with per-operation latencies, peak RSS.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile of already sorted values, `q` in [0, 1]. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Peak resident set size seen by {@link sampleRss}, in bytes (whole process: all systems share it). */
let peakSinceMark = 0;
export function sampleRss(): void {
  const rss = process.memoryUsage.rss();
  if (rss > peakSinceMark) peakSinceMark = rss;
}
/** Starts a new window for {@link peakRssMb}. */
export function markRss(): void {
  peakSinceMark = process.memoryUsage.rss();
}
export function peakRssMb(): number {
  return round(peakSinceMark / (1024 * 1024), 1);
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The outcome of one timed phase. */
export interface PhaseStats {
  /** operations (rows for W) per second over the whole phase */
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  seconds: number;
}

/**
 * Times a phase: `op(i)` is awaited `n` times; each call's latency is recorded. `units` is how many units the phase
 * counts (rows for W, operations otherwise). Throughput is over the phase's wall time, so work between the calls
 * (a fresh fork every 100 lookups) counts too.
 */
export async function timePhase(n: number, units: number, op: (i: number) => Promise<void>, tick?: (done: number) => void): Promise<PhaseStats> {
  const lat = new Float64Array(n);
  const start = performance.now();
  let lastSample = start;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op(i);
    lat[i] = performance.now() - t0;
    // Reading RSS costs tens of microseconds: sample at most every 20 ms of phase time.
    if (lat[i]! > 20 || performance.now() - lastSample > 20) {
      sampleRss();
      lastSample = performance.now();
    }
    tick?.(i + 1);
  }
  const seconds = (performance.now() - start) / 1000;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  return {
    perSecond: n === 0 ? Number.NaN : units / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    seconds,
  };
}
