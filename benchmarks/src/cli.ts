// The benchmark CLI: `pnpm bench -- [options]` (see args.ts or --help).
import { parse, USAGE } from './args.ts';
import { compare } from './compare.ts';
import { Databases } from './databases.ts';
import { silentProgress, stderrProgress } from './progress.ts';
import type { Result } from './run.ts';
import { registry } from './registry.ts';
import { scale } from './scale.ts';

async function main(): Promise<number> {
  let args;
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!args) {
    process.stdout.write(USAGE);
    return 0;
  }
  const progress = args.json ? silentProgress : stderrProgress();
  const dbs = new Databases({ driver: args.driver, pgUrl: args.pgUrl, latencyMs: args.latency });
  // Ctrl-C and kill: drop the databases we made before leaving.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    progress.end();
    process.stderr.write(`\n${signal}: dropping the benchmark databases...\n`);
    void dbs.closeAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const emit = (line: Result) => {
    if (args.json) process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  try {
    const table = args.registry
      ? await registry(args, progress, emit)
      : args.scale
        ? await scale(args, dbs, progress, emit)
        : await compare(args, dbs, progress, emit);
    if (!args.json) process.stdout.write(`${table}\n`);
    if (args.chart) process.stderr.write(`chart written to ${args.chart}\n`);
    return 0;
  } catch (e) {
    if (stopping) return await new Promise<number>(() => {}); // the signal handler exits once the databases are gone
    progress.end();
    process.stderr.write(`\nbenchmark failed: ${(e as Error).stack ?? e}\n`);
    return 1;
  } finally {
    await dbs.closeAll();
  }
}

process.exitCode = await main();
