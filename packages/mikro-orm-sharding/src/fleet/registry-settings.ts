import { ShardingError } from '../errors/errors.ts';
import type { FleetSettings, OnShardOpen } from './fleet.ts';

/** The registry options of `init()` (`maxOpenShards`, `onShardOpen`), checked. */
export function registrySettings(options: { readonly maxOpenShards?: number; readonly onShardOpen?: OnShardOpen }): FleetSettings {
  const { maxOpenShards = Infinity, onShardOpen } = options;
  if (maxOpenShards !== Infinity && (!Number.isInteger(maxOpenShards) || maxOpenShards < 1)) {
    throw ShardingError.invalidOptions(`\`maxOpenShards\` must be a whole number of at least 1; got ${String(maxOpenShards)}.`, maxOpenShards);
  }
  if (onShardOpen !== undefined && typeof onShardOpen !== 'function') {
    throw ShardingError.invalidOptions('`onShardOpen` must be a function.', onShardOpen);
  }
  return { maxOpenShards, onShardOpen };
}
