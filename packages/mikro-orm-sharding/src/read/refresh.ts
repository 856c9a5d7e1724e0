import { helper, Reference, type FindOneOptions } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { onShard } from '../errors/shard-failure.ts';
import { readOn } from '../routing/read-your-writes.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { labelOf } from '../write/write-plan.ts';

/**
 * Reloads an entity from its shard (`em.refresh()`, or `em.refreshOrFail()` when `orFail`): `shard` (which must
 * agree with the entity's known shard), else the entity's own.
 */
export function refreshOnShard<T extends object>(
  scope: ShardScope,
  entity: T,
  shard: ShardId | undefined,
  options: FindOneOptions<T, never, never, never>,
  orFail: boolean,
): Promise<T | null> {
  const target = shardToRefresh(scope, entity, shard);
  return onShard(
    'refresh',
    target,
    onReadyFork(
      scope,
      target,
      fork => {
        const read = readOn(scope, target, helper(entity).__meta.class, options);
        return orFail ? fork.refreshOrFail(entity, read) : fork.refresh(entity, read);
      },
      'the { shard } option',
    ),
  );
}

/** The shard of an entity to refresh: `{ shard }` (which must agree with a known shard), else its own. */
function shardToRefresh(scope: ShardScope, entity: object, shard: ShardId | undefined): ShardId {
  const known = scope.shardOf(entity);
  if (shard !== undefined && known !== undefined && known !== shard) {
    throw ShardingError.shardMismatch('refresh', labelOf(Reference.unwrapReference(entity)), known, shard);
  }
  const target = shard ?? known;
  if (target === undefined) {
    throw ShardingError.unplacedEntity('refresh', labelOf(Reference.unwrapReference(entity)));
  }
  return target;
}
