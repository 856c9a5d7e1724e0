/**
 * A worker of test/transactions-crash.test.ts: it opens the bank's fleet and makes transfers between accounts in
 * two-phase commit transactions, two at a time (on disjoint accounts, so they never wait for each other), until it
 * has made `transfers` of them, printing `ok <transfer>` for each one committed. The test starts it with MIKRO_ORM_SHARDING_CRASH_AT set to a step of the protocol,
 * where the library kills this process with SIGKILL. Started with `--conditions=@mikro-orm-sharding/source` on the
 * pinned Node 24, which runs this TypeScript file.
 */
import { ShardedMikroORM } from 'mikro-orm-sharding';
import { Account, ACCOUNTS, bankOptions, Ledger, type BankTask } from './transfers.ts';

const task = JSON.parse(process.argv[2]!) as BankTask;
let state = task.seed >>> 0 || 1;
const random = (n: number) => {
  // xorshift32: the same seed gives the same transfers.
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) % n;
};

await using orm = await ShardedMikroORM.init(bankOptions(task, false));
let next = task.firstTransfer;
const half = ACCOUNTS / 2;

async function transfers(lane: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const from = random(half);
    const to = (from + 1 + random(half - 1)) % half;
    const amount = 1 + random(50);
    const transfer = next++;
    await orm.em.fork().transactional(async em => {
      const [debit, credit] = await Promise.all([em.findOneOrFail(Account, lane * half + 1 + from), em.findOneOrFail(Account, lane * half + 1 + to)]);
      debit.balance -= amount;
      credit.balance += amount;
      em.create(Ledger, { id: transfer * 2, transfer, account: debit.id, amount: -amount });
      em.create(Ledger, { id: transfer * 2 + 1, transfer, account: credit.id, amount });
    });
    // Acknowledged: committed, whatever happens to this process next.
    process.stdout.write(`ok ${transfer}\n`);
  }
}

await Promise.all([transfers(0, Math.ceil(task.transfers / 2)), transfers(1, Math.floor(task.transfers / 2))]);
process.stdout.write('done\n');
