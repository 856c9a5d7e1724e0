import { registryBehaviour } from './registry.ts';
import { postgresTopology } from './support/topology.ts';

registryBehaviour(postgresTopology);
