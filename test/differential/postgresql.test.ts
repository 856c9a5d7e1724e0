import { describe } from 'vitest';
import { postgresTopology } from '../support/topology.ts';
import { describeDifferential } from './property.ts';

describe('differential: PostgreSQL shards vs one PostgreSQL database (C collation)', () => describeDifferential(postgresTopology));
