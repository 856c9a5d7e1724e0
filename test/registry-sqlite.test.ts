import { registryBehaviour } from './registry.ts';
import { sqliteTopology } from './support/topology.ts';

registryBehaviour(sqliteTopology);
