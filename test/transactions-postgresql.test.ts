import { describe } from 'vitest';
import { postgresTopology } from './support/topology.ts';
import { describeTransactions } from './transactions.ts';

describe('transactions on PostgreSQL shards (one database each)', () => describeTransactions(postgresTopology));
