// The soak test: N concurrent request contexts (virtual clients) doing mixed routed reads, writes, fan-outs and
// transactions on PostgreSQL shards for a set time. It reports throughput, latency percentiles, each shard's pool use
// and the process's RSS over time, and checks that no request saw another request's entities and that no committed
// row was lost (final counts against what the clients committed). `pnpm soak -- --help`.
import type { Options } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import pLimit from 'p-limit';
import { ShardedMikroORM, ShardedRequestContext } from 'mikro-orm-sharding';
import { Databases } from './databases.ts';
import { accountIds, ownerTag, shardName, soakRouting, SoakAccount } from './soak/model.ts';
import {
  checkIsolation,
  DEFAULT_TRANSACTIONS,
  fanOut,
  NOTHING,
  read,
  SoakClient,
  SoakViolation,
  TRANSACTION_STEPS,
  TWO_PHASE_STEPS,
  write,
  type Step,
  type StepContext,
} from './soak/steps.ts';
import { percentile, round } from './stats.ts';
import { prng } from './workload.ts';

export interface SoakOptions {
  /** The PostgreSQL server; a database per shard is created on it and dropped after. */
  readonly pgUrl: string;
  /** @default 4 */
  readonly shards?: number;
  /** Concurrent request contexts. @default 1000 */
  readonly clients?: number;
  /** How long the load runs. @default 30 */
  readonly seconds?: number;
  /** Connections per shard's pool: the fleet holds at most shards x this many. @default 8 */
  readonly poolMax?: number;
  /**
   * Transactions spanning shards (`twopc`, `multi`) under way at once; the others wait their turn. Each holds a
   * connection on each of its shards, and `twopc` one more on the log shard while it logs: past half the pool they
   * can take every connection and wait for each other.
   * @default max(1, floor(poolMax / 2))
   */
  readonly crossShardConcurrency?: number;
  /** Percent of requests per kind; the rest are transactions. @default { read: 40, write: 30, fanOut: 10 } */
  readonly mix?: { readonly read: number; readonly write: number; readonly fanOut: number };
  /**
   * The transactional steps, keys of TRANSACTION_STEPS; transactions pick among them alike often. `twopc` configures
   * two-phase commit on the fleet (the server needs `max_prepared_transactions` > 0).
   * @default ['one-shard', 'twopc']
   */
  readonly transactions?: readonly string[];
  /** How often pools and RSS are sampled. @default 1000 */
  readonly sampleMs?: number;
  /** @default 42 */
  readonly seed?: number;
  /** Called with each sample while the load runs (progress). */
  readonly onSample?: (sample: SoakSample) => void;
}

export interface PoolUse {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface SoakSample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssMb: number;
  readonly requests: number;
  readonly pools: Readonly<Record<string, PoolUse>>;
  /** With `twopc`: this run's transactions prepared on some shard and not yet committed there, on the whole server. */
  readonly prepared?: number;
}

export interface OperationStats {
  readonly count: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface SoakReport {
  readonly shards: number;
  readonly clients: number;
  readonly seconds: number;
  readonly transactions: readonly string[];
  readonly crossShardConcurrency: number;
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly operations: Readonly<Record<string, OperationStats>>;
  readonly samples: readonly SoakSample[];
  readonly peakRssMb: number;
  /** The most waiting requests any shard's pool had in a sample. */
  readonly peakWaiting: number;
  /** How long transactions across shards waited for their turn (`crossShardConcurrency`): part of their latency. */
  readonly crossShardWait: { readonly count: number; readonly p50Ms: number; readonly p99Ms: number };
  /** Up to five distinct error messages, with how often each occurred. */
  readonly topErrors: readonly { readonly message: string; readonly count: number }[];
  readonly checks: SoakChecks;
}

export interface SoakChecks {
  /** Requests that held another request's entity. */
  readonly isolationViolations: number;
  /** Committed rows a request did not find, or that are missing at the end. */
  readonly lostRows: number;
  /** Rows at the end that no client committed (nor may have). */
  readonly phantomRows: number;
  /** Answers that were wrong in another way (another owner's row in a client's query). */
  readonly wrongAnswers: number;
  /** Clients whose account balances do not add up to what they committed: a transfer that was not all-or-nothing. */
  readonly balanceMismatches: number;
  /** Accounts whose balance is not what its client committed (a lost or phantom update). */
  readonly accountMismatches: number;
  /** Items counted at the end, and committed by the clients. */
  readonly rowsInDatabase: number;
  readonly rowsCommitted: number;
  readonly ok: boolean;
  /** The first few violations, for the report. */
  readonly examples: readonly string[];
}

/** A request kind (`read`, `write`, `fanOut`, or `tx:<step>` for each transactional step): its step and how it went. */
interface Kind {
  readonly name: string;
  readonly step: Step;
  readonly latencies: number[];
  errors: number;
}

/** Runs the soak on fresh databases and drops them after, whatever happens. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const shards = options.shards ?? 4;
  const clientCount = options.clients ?? 1_000;
  const seconds = options.seconds ?? 30;
  const mix = options.mix ?? { read: 40, write: 30, fanOut: 10 };
  const transactions = options.transactions ?? DEFAULT_TRANSACTIONS;
  const unknown = transactions.filter(name => !Object.hasOwn(TRANSACTION_STEPS, name));
  if (transactions.length === 0 || unknown.length > 0) {
    const named = transactions.length === 0 ? 'no transaction step' : `unknown transaction step "${unknown.join('", "')}"`;
    throw new Error(`${named} (choose from ${Object.keys(TRANSACTION_STEPS).join(', ')})`);
  }
  if (clientCount > 2_000) {
    throw new Error('at most 2000 clients (item ids must stay in int range)');
  }
  // Prepared transaction ids are server-wide: this run's own coordinator, so it never resolves another's.
  const coordinatorId = `soak_${process.pid}_${Date.now().toString(36)}`;
  const twoPhase = transactions.some(name => TWO_PHASE_STEPS.has(name));
  const poolMax = options.poolMax ?? 8;
  const crossShardConcurrency = options.crossShardConcurrency ?? Math.max(1, Math.floor(poolMax / 2));
  const dbs = new Databases({ driver: 'postgresql', pgUrl: options.pgUrl });
  try {
    const provisioned = await dbs.provision('soak', shards);
    const shared: Partial<Options> = {
      driver: PostgreSqlDriver,
      debug: false,
      allowGlobalContext: false,
      pool: { min: 0, max: poolMax },
    };
    const orm = await ShardedMikroORM.init({
      ...shared,
      ...soakRouting(shards),
      shards: Object.fromEntries(provisioned.map((db, i) => [shardName(i), { clientUrl: db.clientUrl! }])),
      ...(twoPhase ? { twoPhaseCommit: { coordinatorId, logShard: shardName(0) } } : {}),
    });
    try {
      await orm.schema.create();
      const clients = Array.from({ length: clientCount }, (_, i) => new SoakClient(i));
      await orm.em.fork().insertMany(
        SoakAccount,
        clients.flatMap(client => accountIds(client.index).map(id => ({ id, owner: ownerTag(client.index), balance: 0 }))),
      );
      const share = (100 - mix.read - mix.write - mix.fanOut) / transactions.length;
      const kinds: [number, string, Step][] = [
        [mix.read, 'read', read],
        [mix.write, 'write', write],
        [mix.fanOut, 'fanOut', fanOut],
        ...transactions.map((name): [number, string, Step] => [share, `tx:${name}`, TRANSACTION_STEPS[name]!]),
      ];
      // This run's prepared transactions, asked on a connection of its own: the fleet's pools may have a queue.
      const prepared = twoPhase
        ? async () => {
            const [row] = await dbs.adminQuery<{ n: string }>('select count(*) as n from pg_prepared_xacts where starts_with(gid, ?)', [
              `mos:${coordinatorId}:`,
            ]);
            return Number(row?.n ?? 0);
          }
        : undefined;
      const load = new Load(orm, kinds, options.seed ?? 42, shards, prepared, crossShardConcurrency);
      const samples = await load.run(clients, seconds * 1000, options.sampleMs ?? 1_000, options.onSample);
      // A transfer that failed in doubt is finished first, as a restarted application's init() would.
      await orm.recover();
      const checks = await finalChecks(orm, clients, load.violations);
      return load.report({ shards, clients: clientCount, seconds, transactions, crossShardConcurrency, samples, checks });
    } finally {
      await orm.close(true);
    }
  } finally {
    await dbs.closeAll();
  }
}

/** The running load: clients, their latencies, errors and violations. */
class Load {
  readonly #orm: ShardedMikroORM;
  /** Each kind with the upper bound of its draw in [0, 100). */
  readonly #kinds: [number, Kind][] = [];
  readonly #random: () => number;
  readonly #shards: number;
  readonly #prepared: (() => Promise<number>) | undefined;
  readonly #acrossShards: StepContext['acrossShards'];
  readonly #turnWaits: number[] = [];
  readonly #messages = new Map<string, number>();
  readonly violations: SoakViolation[] = [];
  #requests = 0;
  #elapsed = 0;

  /** `kinds`: each kind's percent of the requests and its step. */
  constructor(
    orm: ShardedMikroORM,
    kinds: readonly [number, string, Step][],
    seed: number,
    shards: number,
    prepared: (() => Promise<number>) | undefined,
    crossShardConcurrency: number,
  ) {
    this.#orm = orm;
    let bound = 0;
    for (const [percent, name, step] of kinds) {
      this.#kinds.push([(bound += percent), { name, step, latencies: [], errors: 0 }]);
    }
    this.#random = prng(seed);
    this.#shards = shards;
    this.#prepared = prepared;
    const limit = pLimit(crossShardConcurrency);
    this.#acrossShards = run => {
      const asked = performance.now();
      return limit(() => {
        this.#turnWaits.push(performance.now() - asked);
        return run();
      });
    };
  }

  async run(clients: readonly SoakClient[], ms: number, sampleMs: number, onSample?: (sample: SoakSample) => void): Promise<SoakSample[]> {
    const start = performance.now();
    const deadline = start + ms;
    const samples: SoakSample[] = [];
    const sample = async () => {
      const pools: Record<string, PoolUse> = {};
      for (const [id, shard] of this.#orm.shards) {
        const pool = (await shard.em.getConnection().getNativeClient()) as { totalCount: number; idleCount: number; waitingCount: number };
        pools[id] = { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
      }
      const now = { t: round((performance.now() - start) / 1000, 1), rssMb: round(process.memoryUsage.rss() / 2 ** 20, 1), requests: this.#requests, pools };
      const prepared = await this.#prepared?.();
      const taken = prepared === undefined ? now : { ...now, prepared };
      samples.push(taken);
      onSample?.(taken);
    };
    let sampling = Promise.resolve();
    const timer = setInterval(() => {
      sampling = sampling.then(sample, () => undefined);
    }, sampleMs);
    try {
      await Promise.all(clients.map(client => this.#client(client, deadline)));
    } finally {
      clearInterval(timer);
      await sampling;
    }
    await sample();
    this.#elapsed = (performance.now() - start) / 1000;
    return samples;
  }

  async #client(client: SoakClient, deadline: number): Promise<void> {
    while (performance.now() < deadline) {
      const kind = this.#kind();
      const started = performance.now();
      try {
        await ShardedRequestContext.create(this.#orm.em, () => this.#request(kind, client));
        kind.latencies.push(performance.now() - started);
      } catch (error) {
        kind.errors++;
        if (error instanceof SoakViolation) {
          this.violations.push(error);
        } else {
          const message = (error as Error)?.message?.split('\n')[0] ?? String(error);
          this.#messages.set(message, (this.#messages.get(message) ?? 0) + 1);
        }
      }
      this.#requests++;
    }
  }

  async #request(kind: Kind, client: SoakClient): Promise<void> {
    const scoped = ShardedRequestContext.getEntityManager(this.#orm);
    if (!scoped) {
      throw new SoakViolation('isolation', `${client.owner}'s request has no context`);
    }
    // The global entity manager: inside the context each call acts on the request's own.
    const ctx: StepContext = { em: this.#orm.em, client, shards: this.#shards, random: this.#random, acrossShards: this.#acrossShards, planned: NOTHING };
    try {
      await kind.step(ctx);
    } catch (error) {
      client.uncertain(ctx.planned);
      throw error;
    }
    client.committed(ctx.planned);
    if (ShardedRequestContext.getEntityManager(this.#orm) !== scoped) {
      throw new SoakViolation('isolation', `${client.owner}'s request context changed under it`);
    }
    checkIsolation(scoped, client, this.#orm.shardIds);
  }

  #kind(): Kind {
    const draw = this.#random() * 100;
    return (this.#kinds.find(([limit]) => draw < limit) ?? this.#kinds.at(-1)!)[1];
  }

  #waits(): SoakReport['crossShardWait'] {
    const sorted = this.#turnWaits.toSorted((a, b) => a - b);
    return { count: sorted.length, p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)) };
  }

  report(base: Pick<SoakReport, 'shards' | 'clients' | 'seconds' | 'transactions' | 'crossShardConcurrency' | 'samples' | 'checks'>): SoakReport {
    const kinds = this.#kinds.map(([, kind]) => kind);
    const all = kinds.flatMap(kind => kind.latencies).sort((a, b) => a - b);
    const operations = Object.fromEntries(
      kinds.map(kind => {
        const sorted = kind.latencies.toSorted((a, b) => a - b);
        const count = sorted.length + kind.errors;
        return [
          kind.name,
          {
            count,
            errors: kind.errors,
            perSecond: round(count / this.#elapsed, 1),
            p50Ms: round(percentile(sorted, 0.5)),
            p99Ms: round(percentile(sorted, 0.99)),
          },
        ];
      }),
    );
    const errors = kinds.reduce((sum, kind) => sum + kind.errors, 0);
    return {
      ...base,
      requests: this.#requests,
      errors,
      perSecond: round(this.#requests / this.#elapsed, 1),
      p50Ms: round(percentile(all, 0.5)),
      p99Ms: round(percentile(all, 0.99)),
      operations,
      peakRssMb: Math.max(...base.samples.map(s => s.rssMb)),
      peakWaiting: Math.max(0, ...base.samples.flatMap(s => Object.values(s.pools).map(pool => pool.waiting))),
      crossShardWait: this.#waits(),
      topErrors: [...this.#messages]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([message, count]) => ({ message, count })),
    };
  }
}

/** Counts every shard's rows with raw SQL and compares them with what each client committed. */
export async function finalChecks(orm: ShardedMikroORM, clients: readonly SoakClient[], violations: readonly SoakViolation[]): Promise<SoakChecks> {
  const items = new Map<string, number>();
  /** Each account's balance, by id. */
  const accounts = new Map<number, number>();
  for (const [, shard] of orm.shards) {
    const connection = shard.em.fork().getConnection();
    for (const row of await connection.execute<{ owner: string; n: string }[]>('select owner, count(*) as n from soak_item group by owner')) {
      items.set(row.owner, (items.get(row.owner) ?? 0) + Number(row.n));
    }
    for (const row of await connection.execute<{ id: number; balance: number }[]>('select id, balance from soak_account')) {
      accounts.set(Number(row.id), Number(row.balance));
    }
  }
  const examples = violations.slice(0, 5).map(violation => violation.message);
  let lostRows = violations.filter(violation => violation.kind === 'lost-row').length;
  let phantomRows = 0;
  let balanceMismatches = 0;
  let accountMismatches = 0;
  let rowsCommitted = 0;
  for (const client of clients) {
    const found = items.get(client.owner) ?? 0;
    rowsCommitted += client.items.length;
    if (found < client.items.length) {
      lostRows += client.items.length - found;
      examples.push(`${client.owner}: ${client.items.length} items committed, ${found} found`);
    } else if (found > client.items.length + client.uncertainItems) {
      phantomRows += found - client.items.length - client.uncertainItems;
      examples.push(`${client.owner}: ${client.items.length} items committed (${client.uncertainItems} uncertain), ${found} found`);
    }
    const balances = accountIds(client.index).map(id => accounts.get(id) ?? 0);
    const balance = balances[0]! + balances[1]!;
    if (Math.abs(balance - client.balance) > client.uncertainBalance) {
      balanceMismatches++;
      examples.push(`${client.owner}: balances add up to ${balance}, committed ${client.balance} (${client.uncertainBalance} uncertain)`);
    }
    balances.forEach((found, i) => {
      if (Math.abs(found - client.accounts[i]!) > client.uncertainAccounts[i]!) {
        accountMismatches++;
        examples.push(`${client.owner}: account ${i} holds ${found}, committed ${client.accounts[i]} (${client.uncertainAccounts[i]} uncertain)`);
      }
    });
  }
  const isolationViolations = violations.filter(violation => violation.kind === 'isolation').length;
  const wrongAnswers = violations.filter(violation => violation.kind === 'wrong-answer').length;
  return {
    isolationViolations,
    lostRows,
    phantomRows,
    wrongAnswers,
    balanceMismatches,
    accountMismatches,
    rowsInDatabase: [...items.values()].reduce((a, b) => a + b, 0),
    rowsCommitted,
    ok: isolationViolations + lostRows + phantomRows + wrongAnswers + balanceMismatches + accountMismatches === 0,
    examples: examples.slice(0, 10),
  };
}

/** The report as text: totals, each operation, pools and RSS over time, the checks. */
export function formatSoakReport(report: SoakReport): string {
  const lines = [
    `soak: ${report.clients} clients on ${report.shards} PostgreSQL shards for ${report.seconds} s (transactions: ${report.transactions.join(', ')}; at most ${report.crossShardConcurrency} across shards at once)`,
    `requests ${report.requests} (${report.perSecond}/s), errors ${report.errors}, p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms, peak RSS ${report.peakRssMb} MB, peak pool waiting ${report.peakWaiting}`,
    '',
    'operation        count   errors   per s    p50 ms   p99 ms',
    ...Object.entries(report.operations).map(
      ([kind, s]) =>
        `${kind.padEnd(15)} ${String(s.count).padStart(6)} ${String(s.errors).padStart(8)} ${String(s.perSecond).padStart(7)} ${String(s.p50Ms).padStart(9)} ${String(s.p99Ms).padStart(8)}`,
    ),
    ...(report.crossShardWait.count === 0
      ? []
      : [
          `(the ${report.crossShardWait.count} transactions across shards waited for their turn, at most ${report.crossShardConcurrency} at once: p50 ${report.crossShardWait.p50Ms} ms, p99 ${report.crossShardWait.p99Ms} ms)`,
        ]),
    '',
    `    t s   RSS MB   requests   pools (total/idle/waiting per shard)${report.samples[0]?.prepared === undefined ? '' : '   prepared'}`,
    ...report.samples.map(
      s =>
        `${String(s.t).padStart(7)} ${String(s.rssMb).padStart(8)} ${String(s.requests).padStart(10)}   ${Object.entries(s.pools)
          .map(([id, pool]) => `${id} ${pool.total}/${pool.idle}/${pool.waiting}`)
          .join('  ')}${s.prepared === undefined ? '' : `   ${String(s.prepared).padStart(8)}`}`,
    ),
    '',
    `checks: ${report.checks.ok ? 'OK' : 'FAILED'}: isolation violations ${report.checks.isolationViolations}, lost rows ${report.checks.lostRows}, phantom rows ${report.checks.phantomRows}, wrong answers ${report.checks.wrongAnswers}, balance mismatches ${report.checks.balanceMismatches}, account mismatches ${report.checks.accountMismatches}; rows ${report.checks.rowsInDatabase} in the databases, ${report.checks.rowsCommitted} committed`,
    ...report.checks.examples.map(example => `  ${example}`),
    ...report.topErrors.map(error => `error x${error.count}: ${error.message}`),
  ];
  return lines.join('\n');
}
