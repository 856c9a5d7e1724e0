import { describe } from 'vitest';
import { sqliteTopology } from './support/topology.ts';
import { describeTransactions } from './transactions.ts';

describe('transactions on SQLite shards', () => describeTransactions(sqliteTopology));
