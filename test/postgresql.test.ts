import { describe } from 'vitest';
import { describeBehaviour } from './behaviour.ts';
import { postgresTopology } from './support/topology.ts';

describe('PostgreSQL shards (one database each)', () => describeBehaviour(postgresTopology));
