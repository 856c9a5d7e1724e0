/**
 * The application code of the warehouse example: a `user` table in the default database and a `transaction` table in
 * the data warehouse (seed 004's `orm_base()` and `orm_base('warehouse')`), and what the application does with them.
 * main.ts runs it on PostgreSQL; warehouse.test.ts tests it with a rolled-back session per test.
 */
import { defineEntity, p } from '@mikro-orm/core';
import type { ShardedEntityManager } from 'mikro-orm-sharding';

export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'user',
  properties: {
    id: p.integer().primary().autoincrement(false),
    name: p.string(),
    balance: p.integer(),
  },
});
export class User extends UserSchema.class {}
UserSchema.setClass(User);

export const TransactionSchema = defineEntity({
  name: 'Transaction',
  tableName: 'transaction',
  properties: {
    id: p.integer().primary().fieldName('tx_id'),
    // The user's id, not a relation: a foreign key cannot point into another database.
    userId: p.integer(),
    amount: p.integer(),
    timestamp: p.datetime(),
  },
});
export class Transaction extends TransactionSchema.class {}
TransactionSchema.setClass(Transaction);

/** The options every environment shares: the entities and where each lives. The shards come from the environment. */
export const routing = {
  entities: [User, Transaction],
  binds: { Transaction: 'warehouse' }, // orm_base('warehouse')
  defaultBind: 'default', // orm_base(): every other entity
  // pyramid_sqlalchemy's `enable_sql_two_phase_commit()`: every transaction over several databases commits in two
  // phases, all or nothing (PostgreSQL with max_prepared_transactions > 0). Its coordinator log is in `default`.
  transactionMode: 'twopc',
  twoPhaseCommit: { coordinatorId: 'warehouse-example', logShard: 'default' },
} as const;

/**
 * Charges a user and records the transaction in the warehouse: both or neither, by the fleet's two-phase commit.
 * The mode comes from the configuration, not from a `{ mode: 'twopc' }` here, so a test can run this inside its
 * rolled-back transaction (a nested transaction keeps its outer transaction's mode).
 */
export function purchase(em: ShardedEntityManager, userId: number, amount: number, at = new Date()): Promise<Transaction> {
  return em.transactional(async tx => {
    const user = await tx.findOneOrFail(User, userId); // the default database
    if (user.balance < amount) throw new Error(`${user.name} cannot pay ${amount}`);
    user.balance -= amount;
    return tx.create(Transaction, { userId, amount, timestamp: at }); // the warehouse
  });
}

/** The seed's `get_sql_query(Transaction).order_by(Transaction.timestamp).limit(1).first()`: the bind finds the database. */
export async function latestTransaction(em: ShardedEntityManager): Promise<Transaction | undefined> {
  const [latest] = await em.find(Transaction, {}, { orderBy: { timestamp: 'desc' }, limit: 1 });
  return latest;
}
