// The soak CLI: `pnpm soak -- [options]` (see USAGE). Prints the report; exits 1 when a check failed.
import { parseArgs } from 'node:util';
import { int } from './args.ts';
import { formatSoakReport, runSoak } from './soak.ts';
import { DEFAULT_TRANSACTIONS, TRANSACTION_STEPS } from './soak/steps.ts';

const USAGE = `Usage: pnpm soak -- [options]

N concurrent request contexts doing mixed routed reads, writes, fan-outs and transactions on PostgreSQL shards for a
set time; reports throughput, p50/p99, pool use and RSS over time, and checks request isolation and that no committed
row was lost. Databases are created on the server and dropped after.

  --clients N        concurrent request contexts (default 1000, at most 2000)
  --seconds N        how long the load runs (default 30)
  --shards N         PostgreSQL shards (default 4)
  --pool N           connections per shard's pool (default 8)
  --mix R,W,F        percent of reads, writes and fan-outs; the rest are transactions (default 40,30,10)
  --tx NAME[,NAME]   the transactional steps, picked alike often: ${Object.keys(TRANSACTION_STEPS).join(', ')}
                     (default ${DEFAULT_TRANSACTIONS.join(',')}; twopc and multi move money between a client's two
                     accounts on two shards; twopc needs max_prepared_transactions > 0 on the server)
  --tx-concurrency N transactions across shards under way at once (default half of --pool, at least 1)
  --pg-url URL       PostgreSQL server (default postgresql://postgres@127.0.0.1:5432)
  --seed N           PRNG seed (default 42)
  --json             the report as one JSON line
  -h, --help         this text
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2).filter(a => a !== '--'),
      strict: true,
      options: {
        clients: { type: 'string' },
        seconds: { type: 'string' },
        shards: { type: 'string' },
        pool: { type: 'string' },
        mix: { type: 'string' },
        tx: { type: 'string' },
        'tx-concurrency': { type: 'string' },
        'pg-url': { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const [read, write, fanOut] = (values.mix ?? '40,30,10').split(',').map((part, i) => int(['read', 'write', 'fan-out'][i]!, part.trim(), 0, 0));
    if (read! + write! + fanOut! > 100) throw new Error('--mix must add up to at most 100');
    const report = await runSoak({
      pgUrl: (values['pg-url'] ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
      clients: int('clients', values.clients, 1_000, 1),
      seconds: int('seconds', values.seconds, 30, 1),
      shards: int('shards', values.shards, 4, 1),
      poolMax: int('pool', values.pool, 8, 1),
      crossShardConcurrency: values['tx-concurrency'] === undefined ? undefined : int('tx-concurrency', values['tx-concurrency'], 1, 1),
      mix: { read: read!, write: write!, fanOut: fanOut! },
      transactions: values.tx?.split(',').map(name => name.trim()) ?? DEFAULT_TRANSACTIONS,
      seed: int('seed', values.seed, 42, 0),
      onSample: values.json ? undefined : sample => process.stderr.write(`\r${sample.t}s  ${sample.requests} requests  RSS ${sample.rssMb} MB\x1b[K`),
    });
    if (!values.json) process.stderr.write('\n');
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatSoakReport(report)}\n`);
    return report.checks.ok ? 0 : 1;
  } catch (e) {
    process.stderr.write(`\nsoak failed: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

process.exitCode = await main();
