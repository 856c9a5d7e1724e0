import { describe } from 'vitest';
import { describeTableSuffix } from './table-suffix.ts';
import { postgresTopology } from './support/topology.ts';

describe('table-suffix sharding in one PostgreSQL database', () => describeTableSuffix(postgresTopology));
