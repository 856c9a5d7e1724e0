import { describe } from 'vitest';
import { describeBehaviour } from './behaviour.ts';
import { sqliteTopology } from './support/topology.ts';

describe('SQLite shards (one file each)', () => describeBehaviour(sqliteTopology));
