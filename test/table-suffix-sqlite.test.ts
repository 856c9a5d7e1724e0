import { describe } from 'vitest';
import { describeTableSuffix } from './table-suffix.ts';
import { sqliteTopology } from './support/topology.ts';

describe('table-suffix sharding in one SQLite file', () => describeTableSuffix(sqliteTopology));
