/**
 * The bank of the crash harness (test/transactions-crash.test.ts and its worker, transfer-worker.ts): accounts on
 * three PostgreSQL shards (account `id % 3`), and for each transfer one ledger row beside each account it touched.
 * A transfer is all-or-nothing when both its ledger rows exist, or neither; the bank is sound when every account's
 * balance is its opening balance plus its ledger, and the balances add up to what they did at the start.
 */
import { defineEntity, p } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { ShardedMikroORMOptions } from 'mikro-orm-sharding';

export const AccountSchema = defineEntity({
  name: 'Account',
  properties: { id: p.integer().primary().autoincrement(false), balance: p.integer() },
});
export class Account extends AccountSchema.class {}
AccountSchema.setClass(Account);

export const LedgerSchema = defineEntity({
  name: 'Ledger',
  properties: {
    id: p.integer().primary().autoincrement(false),
    transfer: p.integer(),
    account: p.integer(),
    amount: p.integer(),
  },
});
export class Ledger extends LedgerSchema.class {}
LedgerSchema.setClass(Ledger);

export const ACCOUNTS = 12;
export const OPENING_BALANCE = 1000;
export const shardOfAccount = (id: number) => `s${id % 3}`;

/** What the test and its workers share to open the same fleet. */
export interface BankTask {
  readonly clientUrl: string;
  readonly shards: Record<string, { dbName: string }>;
  readonly coordinatorId: string;
  /** The first transfer id this process uses (each transfer takes ids `transfer * 2` and `transfer * 2 + 1` for its rows). */
  readonly firstTransfer: number;
  readonly transfers: number;
  readonly seed: number;
}

export function bankOptions(task: Pick<BankTask, 'clientUrl' | 'shards' | 'coordinatorId'>, recoverOnInit: boolean): ShardedMikroORMOptions {
  return {
    driver: PostgreSqlDriver,
    clientUrl: task.clientUrl,
    entities: [Account, Ledger],
    shards: task.shards,
    shardChooser: ({ entity }) => shardOfAccount(entity instanceof Ledger ? entity.account : (entity as Account).id),
    idChooser: ({ entityName, id }) => (entityName === 'Account' ? [shardOfAccount(Number(id))] : ['s0', 's1', 's2']),
    transactionMode: 'twopc',
    twoPhaseCommit: { coordinatorId: task.coordinatorId, logShard: 's0', recoverOnInit },
    pool: { min: 0, max: 4 },
  };
}
