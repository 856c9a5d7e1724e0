import type { IDatabaseDriver } from '@mikro-orm/core';
import type { ShardOptions } from '../options.ts';

/** The keys `tableSuffixShard()` and `sharedTablesShard()` compose with the user's instead of replacing them. */
export type ComposedKeys<D extends IDatabaseDriver = IDatabaseDriver> = Pick<ShardOptions<D>, 'discovery' | 'schemaGenerator' | 'subscribers'>;

/** How such a shard's options compose with `init()`'s shared options, kept on the options object (spreads keep it). */
const WITH_SHARED = Symbol('mikro-orm-sharding: compose with the shared options');

type Composable<D extends IDatabaseDriver> = ShardOptions<D> & { readonly [WITH_SHARED]?: (user: ComposedKeys<D>) => ComposedKeys<D> };

/**
 * Marks `options` (built from the user's `base` by `build`) so that `init()` builds them again from the user's value
 * of each composed key: the shard's own, or else the shared options' one. A shard's options replace the shared ones
 * key by key, so without this a shared `discovery.onMetadata` or subscriber would silently not run on the shard.
 */
export function composable<D extends IDatabaseDriver>(
  options: ShardOptions<D>,
  base: ShardOptions<D>,
  build: (user: ComposedKeys<D>) => ComposedKeys<D>,
): ShardOptions<D> {
  const rebuild = (shared: ComposedKeys<D>) =>
    build({
      discovery: base.discovery ?? shared.discovery,
      schemaGenerator: base.schemaGenerator ?? shared.schemaGenerator,
      subscribers: base.subscribers ?? shared.subscribers,
    });
  return Object.defineProperty(options, WITH_SHARED, { value: rebuild, enumerable: true });
}

/** A shard's own options as `init()` merges them over the shared ones: composed if {@link composable}, without the mark. */
export function withSharedOptions<D extends IDatabaseDriver>(own: ShardOptions<D>, shared: ComposedKeys<D>): ShardOptions<D> {
  const { [WITH_SHARED]: rebuild, ...rest } = own as Composable<D>;
  return rebuild === undefined ? own : { ...rest, ...rebuild(shared) };
}
