import { describe } from 'vitest';
import { describeTableSuffixTransactions } from './table-suffix-transactions.ts';
import { postgresTopology } from './support/topology.ts';

describe('table-suffix shards in transactions and with shared options, PostgreSQL', () => describeTableSuffixTransactions(postgresTopology));
