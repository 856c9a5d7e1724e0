import { Utils, type EntityName, type GetReferenceOptions, type Primary } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { forkOfOption } from '../route.ts';
import type { ShardScope } from '../scope.ts';
import { onlyCandidate, shardInIdentityMaps } from './lookup.ts';

/**
 * The fork `em.getReference()` makes a reference on: `shard` (which must declare the entity), else an identity map
 * that has the entity, else the id chooser's only candidate (`AMBIGUOUS_SHARD` with several). An alternate `key`
 * needs `shard`: the id chooser routes primary keys only.
 */
export function referenceFork(
  scope: ShardScope,
  entityName: EntityName<object>,
  id: Primary<object>,
  shard: ShardId | undefined,
  key: GetReferenceOptions['key'],
): SqlEntityManager {
  if (shard !== undefined) {
    return forkOfOption(scope, entityName, shard, false);
  }
  if (key !== undefined) {
    throw ShardingError.unsupported(
      `getReference(${Utils.className(entityName)}, ..., { key: '${key}' }) without { shard }`,
      'the id chooser routes primary keys, not alternate keys; pass { shard }, or use findOne()',
    );
  }
  return scope.fork(shardInIdentityMaps(scope, entityName, id) ?? onlyCandidate(scope, entityName, id));
}
