import { describe } from 'vitest';
import { postgresTopology, sqliteTopology } from '../support/topology.ts';
import { describeDifferential } from './property.ts';

// The same property, on fleets routed by shardBy: records keyed by id (hash, or ranges of ids), leaves with their
// record. Queries that pin ids are pruned to the shards that can hold them, and must answer as one database.
describe('differential with shardBy (hash): SQLite shards vs one SQLite database', () => describeDifferential(sqliteTopology, 'hash', 0.25));
describe('differential with shardBy (range): SQLite shards vs one SQLite database', () => describeDifferential(sqliteTopology, 'range', 0.25));
describe('differential with shardBy (hash): PostgreSQL shards vs one PostgreSQL database', () => describeDifferential(postgresTopology, 'hash', 0.25));
describe('differential with shardBy (range): PostgreSQL shards vs one PostgreSQL database', () => describeDifferential(postgresTopology, 'range', 0.25));
