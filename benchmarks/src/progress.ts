// A progress bar on stderr while the benchmark works (silent with --json or when stderr is not a terminal: then one
// line per step).

export interface Progress {
  start(label: string, total: number): void;
  /** How many of the step's units are done; cheap enough to call after every operation. */
  tick: (done: number) => void;
  end(): void;
}

export const silentProgress: Progress = { start() {}, tick() {}, end() {} };

export function stderrProgress(): Progress {
  const tty = process.stderr.isTTY === true;
  const width = 28;
  let label = '';
  let total = 1;
  let last = 0;
  let started = 0;
  const render = (done: number) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(frac * width);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}% ${label} ${done}/${total} ${secs}s`;
    process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1)}\x1b[K`);
  };
  return {
    start(l, t) {
      label = l;
      total = t;
      started = performance.now();
      if (tty) render(0);
      else process.stderr.write(`${l}\n`);
    },
    tick: done => {
      if (!tty) return;
      const now = performance.now();
      if (now - last < 80 && done < total) return;
      last = now;
      render(done);
    },
    end() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}
