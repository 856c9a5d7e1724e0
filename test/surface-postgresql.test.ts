import { describe } from 'vitest';
import { describeSurface } from './surface.ts';
import { postgresTopology } from './support/topology.ts';

describe('the MikroORM surface on PostgreSQL shards', () => describeSurface(postgresTopology));
