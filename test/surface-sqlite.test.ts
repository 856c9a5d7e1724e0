import { describe } from 'vitest';
import { describeSurface } from './surface.ts';
import { sqliteTopology } from './support/topology.ts';

describe('the MikroORM surface on SQLite shards', () => describeSurface(sqliteTopology));
