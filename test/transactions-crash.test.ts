/**
 * Two-phase commit survives its coordinator's death. A worker process (test/processes/transfer-worker.ts) moves
 * money between accounts on three PostgreSQL shards in `twopc` transactions and is SIGKILLed at a step of the
 * protocol (the library's test-only crash point, MIKRO_ORM_SHARDING_CRASH_AT), or at a random moment; then a fresh
 * ORM in this process recovers (init runs recover()). After every trial: nothing of this coordinator is left
 * prepared or logged, every transfer is all or nothing on every shard (both of its ledger rows, or neither), every
 * balance is its opening balance plus its ledger, and the balances add up to what they did at the start.
 *
 * TX_CRASH_TRIALS sets the number of trials (default 9: each step once, and two random kills); TX_CRASH_SEED replays a run.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { PG_URL, postgresTopology, type Topology } from './support/topology.ts';
import { Account, ACCOUNTS, bankOptions, Ledger, OPENING_BALANCE, type BankTask } from './processes/transfers.ts';

const WORKER = fileURLToPath(new URL('./processes/transfer-worker.ts', import.meta.url));
/** The protocol's steps (see src/transactions/twopc.ts), and `random`: a kill at a random moment instead. */
const STEPS = ['begin', 'prepared:1', 'prepared:2', 'prepared', 'logged', 'committed:1', 'committed:2', 'random', 'random'];
const TRIALS = Number(process.env.TX_CRASH_TRIALS ?? STEPS.length);
const SEED = Number(process.env.TX_CRASH_SEED ?? Date.now() % 1_000_000);
const TRANSFERS = 12;

let topology: Topology;
let task: Omit<BankTask, 'firstTransfer' | 'seed'>;

beforeAll(async () => {
  topology = postgresTopology();
  task = {
    clientUrl: PG_URL,
    shards: {
      s0: topology.database('s0') as { dbName: string },
      s1: topology.database('s1') as { dbName: string },
      s2: topology.database('s2') as { dbName: string },
    },
    coordinatorId: `crash_${process.pid}_${Date.now().toString(36)}`,
    transfers: TRANSFERS,
  };
  await using orm = await ShardedMikroORM.init(bankOptions(task, true));
  await orm.schema.refresh();
  const em = orm.em.fork();
  for (let id = 1; id <= ACCOUNTS; id++) em.create(Account, { id, balance: OPENING_BALANCE });
  await em.flush();
});

afterAll(async () => {
  await topology?.dispose();
});

/** Runs a worker until it dies or finishes: the signal that killed it (undefined when it finished), and the transfers it saw committed. */
function runWorker(step: string, trial: number, seed: number): Promise<{ signal: NodeJS.Signals | undefined; acknowledged: number[] }> {
  const crash = step === 'random' ? {} : { MIKRO_ORM_SHARDING_CRASH_AT: step };
  const child = fork(WORKER, [JSON.stringify({ ...task, firstTransfer: trial * 1000, seed })], {
    execPath: process.execPath,
    execArgv: ['--conditions=@mikro-orm-sharding/source'],
    env: { ...process.env, ...crash },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', chunk => (stderr += chunk));
  child.stdout!.on('data', chunk => (stdout += chunk));
  if (step === 'random') {
    // At a random moment: during its start (about a second) or during its transfers.
    setTimeout(() => child.kill('SIGKILL'), 700 + (seed % 900));
  }
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) {
        const acknowledged = [...stdout.matchAll(/^ok (\d+)$/gm)].map(match => Number(match[1]));
        resolve({ signal: signal ?? undefined, acknowledged });
      } else {
        reject(new Error(`worker exited with ${code ?? signal}:\n${stderr}`));
      }
    });
  });
}

async function checkBank(orm: ShardedMikroORM, acknowledged: readonly number[]): Promise<{ transfers: number }> {
  const em = orm.em.fork();
  const accounts = await em.find(Account, {}, { orderBy: { id: 'asc' } });
  const ledger = await em.find(Ledger, {}, { orderBy: { id: 'asc' } });
  expect(accounts).toHaveLength(ACCOUNTS);
  expect(accounts.reduce((sum, account) => sum + account.balance, 0)).toBe(ACCOUNTS * OPENING_BALANCE);
  const byTransfer = new Map<number, Ledger[]>();
  for (const row of ledger) byTransfer.set(row.transfer, [...(byTransfer.get(row.transfer) ?? []), row]);
  for (const [transfer, rows] of byTransfer) {
    expect(rows.map(row => row.id).sort(), `transfer ${transfer} is all or nothing`).toEqual([transfer * 2, transfer * 2 + 1]);
    expect(rows[0]!.amount + rows[1]!.amount, `transfer ${transfer} balances`).toBe(0);
  }
  for (const transfer of acknowledged) {
    expect(byTransfer.has(transfer), `acknowledged transfer ${transfer} survived`).toBe(true);
  }
  for (const account of accounts) {
    const moved = ledger.filter(row => row.account === account.id).reduce((sum, row) => sum + row.amount, 0);
    expect(account.balance, `account ${account.id}`).toBe(OPENING_BALANCE + moved);
  }
  const connection = orm.shard('s0').em.getConnection();
  const left = await connection.execute('select gid from pg_prepared_xacts where starts_with(gid, ?)', [`mos:${task.coordinatorId}:`]);
  expect(left).toEqual([]);
  expect(await connection.execute('select txid from mikro_orm_sharding_2pc where coordinator = ?', [task.coordinatorId])).toEqual([]);
  return { transfers: byTransfer.size };
}

describe(`two-phase commit killed at every step, ${TRIALS} trials (TX_CRASH_TRIALS), seed ${SEED} (TX_CRASH_SEED)`, () => {
  it(
    'recovers every time to a bank where every transfer is all or nothing and no money appeared or vanished',
    { timeout: 60_000 + TRIALS * 15_000 },
    async () => {
      let killed = 0;
      let transfers = 0;
      let committed = 0;
      let rolledBack = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        const seed = (SEED * 7919 + trial * 104_729) % 2_147_483_647;
        // Each step in turn, then random ones.
        const step = trial < STEPS.length ? STEPS[trial]! : STEPS[seed % STEPS.length]!;
        const { signal, acknowledged } = await runWorker(step, trial + 1, seed);
        killed += signal === 'SIGKILL' ? 1 : 0;
        // A fresh ORM, as the application restarting, resolves what the dead worker left in doubt.
        await using recovered = await ShardedMikroORM.init(bankOptions(task, false));
        const report = await recovered.recover();
        expect(report.failed).toEqual([]);
        committed += report.committed.length;
        rolledBack += report.rolledBack.length;
        ({ transfers } = await checkBank(recovered, acknowledged));
      }
      // Each step is reached by the first transfer across shards: the worker dies in nearly every trial, and the
      // kills after the prepares left transactions in doubt that only recovery could finish, one way or the other.
      expect(killed).toBeGreaterThanOrEqual(Math.ceil(TRIALS / 2));
      expect(transfers).toBeGreaterThan(0);
      if (TRIALS >= 7) {
        expect(committed).toBeGreaterThan(0);
        expect(rolledBack).toBeGreaterThan(0);
      }
    },
  );
});
