import { describe } from 'vitest';
import { sqliteTopology } from '../support/topology.ts';
import { describeDifferential } from './property.ts';

describe('differential: SQLite shards vs one SQLite database', () => describeDifferential(sqliteTopology));
