// Command-line options of the benchmark CLI.
import { parseArgs } from 'node:util';

export type DriverName = 'sqlite' | 'postgresql';
export const ALL_SYSTEMS = ['sharded', 'plain', 'handrolled', 'sqlalchemy'] as const;
export type SystemName = (typeof ALL_SYSTEMS)[number];
export const ALL_PHASES = ['W', 'P', 'F', 'C'] as const;
export const ALL_STRATEGIES = ['modulo', 'hash', 'jump', 'range'] as const;
/** How the sharded system routes: the workload's own hand-written murmurhash3 % S choosers, or a `shardBy` strategy. */
export type StrategyName = (typeof ALL_STRATEGIES)[number];
/** Phases run only when asked for: T (one-shard transactions) and X (transactions across shards, per mode). */
export const EXTRA_PHASES = ['T', 'X'] as const;
export const TX_MODES = ['single', 'multi', 'twopc'] as const;
export type TxMode = (typeof TX_MODES)[number];
export type PhaseName = (typeof ALL_PHASES)[number] | 'D' | 'T' | `X-${TxMode}`;

export interface Args {
  driver: DriverName;
  shards: number;
  rows: number;
  points: number;
  fanouts: number;
  systems: SystemName[];
  phases: PhaseName[];
  pgUrl: string;
  repeat: number;
  seed: number;
  json: boolean;
  scale: number[] | undefined;
  latency: number | undefined;
  deepPage: number | undefined;
  txs: number;
  txModes: TxMode[];
  txSpan: number | undefined;
  chart: string | undefined;
  warmup: boolean;
  python: string;
  strategy: StrategyName;
  registry: boolean;
  registryShards: number;
  maxOpen: number;
}

export const USAGE = `Usage: pnpm bench -- [options]

The shared sharding workload (../shared/bench-workload.md), systems side by side in one process.

  --driver sqlite|postgresql   database driver (default sqlite)
  --shards N                   shard count S (default 4)
  --rows N                     rows written in phase W (default 20000)
  --points N                   primary-key lookups in phase P (default 5000)
  --fanouts N                  queries in phases F and C (default 200)
  --systems LIST               sharded,plain,handrolled[,sqlalchemy] (default sharded,plain,handrolled)
  --phases LIST                W,P,F,C,T,X (default W,P,F,C; W always runs, it loads the data; T and X run last)
                               T: one-shard transactional units of work (find by id, change, commit)
                               X: sharded only, transactions changing rows on --tx-span shards, per --tx-modes
  --pg-url URL                 PostgreSQL server (default postgresql://postgres@127.0.0.1:5432)
  --repeat K                   K runs on fresh databases, report the median (default 1)
  --seed N                     PRNG seed (default 42)
  --json                       one JSON line per system and run on stdout (no progress bar, no table)
  --scale LIST                 sharded P and F at each shard count, e.g. 1,2,4,8,16,32
  --latency MS                 PostgreSQL shards behind a loopback proxy adding MS ms per round trip
  --deep-page OFFSET           add phase D: the F query at offset OFFSET (sharded time / plain time)
  --txs N                      transactions in phases T and X, per mode (default 1000)
  --tx-modes LIST              modes of phase X: single,multi,twopc (default all; twopc on postgresql only)
  --tx-span K                  rows (one per shard; all on one shard for single) each X transaction changes (default S)
  --chart FILE.svg             write a bar chart of the table
  --no-warmup                  skip the untimed warm-up run on small sizes
  --python PATH                Python with SQLAlchemy 1.4+ for the sqlalchemy system (default /usr/bin/python3)
  --strategy NAME              how the sharded system routes: modulo (the workload's murmurhash3 % S, hand-written
                               choosers; the default), or shardBy with hash (1024 buckets), jump or range (S equal
                               ranges of ids)
  --registry                   the runtime shard registry instead: --registry-shards SQLite files added with
                               addShard(), at most --max-open open; --points random lookups by id, cold (each on an
                               album not opened yet) and hot (within a working set of --max-open albums)
  --registry-shards N          album files of --registry (default 10000)
  --max-open N                 maxOpenShards of --registry (default 64)
  -h, --help                   this text
`;

/** An integer option: `fallback` when absent; throws when it is not an integer >= `min`. */
export function int(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value
    .split(',')
    .map(s => s.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`--${name}: unknown "${item}" (choose from ${allowed.join(', ')})`);
  }
  if (items.length === 0) throw new Error(`--${name} needs at least one value`);
  return [...new Set(items)] as T[];
}

/** Parses argv (without node and the script); returns undefined when help was asked for. Throws on bad input. */
export function parse(argv: string[]): Args | undefined {
  const { values } = parseArgs({
    args: argv.filter(a => a !== '--'),
    strict: true,
    options: {
      driver: { type: 'string' },
      shards: { type: 'string' },
      rows: { type: 'string' },
      points: { type: 'string' },
      fanouts: { type: 'string' },
      systems: { type: 'string' },
      phases: { type: 'string' },
      'pg-url': { type: 'string' },
      repeat: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      scale: { type: 'string' },
      latency: { type: 'string' },
      'deep-page': { type: 'string' },
      txs: { type: 'string' },
      'tx-modes': { type: 'string' },
      'tx-span': { type: 'string' },
      chart: { type: 'string' },
      'no-warmup': { type: 'boolean' },
      python: { type: 'string' },
      strategy: { type: 'string' },
      registry: { type: 'boolean' },
      'registry-shards': { type: 'string' },
      'max-open': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const latency = values.latency === undefined ? undefined : Number(values.latency);
  if (latency !== undefined && !(latency >= 0)) throw new Error(`--latency must be a number of milliseconds >= 0`);
  const driver = (values.driver ?? (latency !== undefined ? 'postgresql' : 'sqlite')) as DriverName;
  if (driver !== 'sqlite' && driver !== 'postgresql') throw new Error(`--driver must be sqlite or postgresql`);
  if (latency !== undefined && driver !== 'postgresql') throw new Error(`--latency needs --driver postgresql`);
  const scale = values.scale === undefined ? undefined : values.scale.split(',').map(s => int('scale', s.trim(), 1, 1));
  const phases = list('phases', values.phases ?? 'W,P,F,C', [...ALL_PHASES, ...EXTRA_PHASES]);
  const deepPage = values['deep-page'] === undefined ? undefined : int('deep-page', values['deep-page'], 0, 0);
  const systems = list('systems', values.systems ?? 'sharded,plain,handrolled', ALL_SYSTEMS);
  if (deepPage !== undefined && !systems.includes('sharded')) throw new Error('--deep-page measures the sharded system');
  const strategy = (values.strategy ?? 'modulo') as StrategyName;
  if (!ALL_STRATEGIES.includes(strategy)) throw new Error(`--strategy: unknown "${values.strategy}" (choose from ${ALL_STRATEGIES.join(', ')})`);
  if (strategy !== 'modulo' && !systems.includes('sharded')) throw new Error('--strategy routes the sharded system');
  const txModes = list('tx-modes', values['tx-modes'] ?? (driver === 'postgresql' ? 'single,multi,twopc' : 'single,multi'), TX_MODES);
  if (txModes.includes('twopc') && driver !== 'postgresql') throw new Error('--tx-modes twopc needs --driver postgresql');
  if (phases.includes('X') && !systems.includes('sharded')) throw new Error('phase X measures the sharded system');
  const txSpan = values['tx-span'] === undefined ? undefined : int('tx-span', values['tx-span'], 0, 1);
  const shards = int('shards', values.shards, 4, 1);
  if (phases.includes('X') && (txSpan ?? shards) > shards) throw new Error(`--tx-span must be at most --shards (${shards})`);
  // Phases that change rows run after those whose answers are checked against the data as written.
  const ordered: PhaseName[] = [
    'W',
    ...phases.filter((p): p is (typeof ALL_PHASES)[number] => p !== 'T' && p !== 'X'),
    ...(deepPage !== undefined ? (['D'] as const) : []),
    ...(phases.includes('T') ? (['T'] as const) : []),
    ...(phases.includes('X') ? txModes.map(mode => `X-${mode}` as const) : []),
  ];
  return {
    driver,
    shards,
    rows: int('rows', values.rows, 20_000, 1),
    points: int('points', values.points, 5_000, 0),
    fanouts: int('fanouts', values.fanouts, 200, 0),
    systems,
    phases: [...new Set<PhaseName>(ordered)],
    pgUrl: (values['pg-url'] ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
    repeat: int('repeat', values.repeat, 1, 1),
    seed: int('seed', values.seed, 42, 0),
    json: values.json ?? false,
    scale,
    latency,
    deepPage,
    txs: int('txs', values.txs, 1000, 0),
    txModes,
    txSpan,
    chart: values.chart,
    warmup: !values['no-warmup'],
    python: values.python ?? '/usr/bin/python3',
    strategy,
    registry: values.registry ?? false,
    registryShards: int('registry-shards', values['registry-shards'], 10_000, 1),
    maxOpen: int('max-open', values['max-open'], 64, 1),
  };
}
