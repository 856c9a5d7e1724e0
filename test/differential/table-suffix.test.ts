import { describe } from 'vitest';
import { postgresTopology, sqliteTopology } from '../support/topology.ts';
import { describeDifferential } from './property.ts';

// The same property on table-suffix shards: every entity of the model spread over suffix tables (`rec_s0`,
// `leaf_s0` ...) of ONE database, four MikroORMs over it, routed by the tableSuffix() strategy. Queries over every
// suffix must answer as one plain database holding every row; queries pinning ids are pruned to their suffix.
describe('differential with table-suffix shards: one SQLite database vs one plain SQLite database', () =>
  describeDifferential(sqliteTopology, 'table-suffix', 0.1));
describe('differential with table-suffix shards: one PostgreSQL database vs one plain PostgreSQL database', () =>
  describeDifferential(postgresTopology, 'table-suffix', 0.1));
