import type { EntityMetadata, EntityName, FilterQuery, FindOptions } from '@mikro-orm/core';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { shardsKnowing, shardWith } from '../fleet/fleet-metadata.ts';
import { callChooser, checkShard, checkShards, describeEntityName } from '../route.ts';
import type { ShardScope } from '../scope.ts';
import { shardOfPrimaryKey } from './key-shards.ts';
import { pinnedKeyValues } from './pinned-keys.ts';
import { checkDecided, checkIdBucket, derivedShard } from './place.ts';
import { shardsOfWhere, type ShardSet } from './prune.ts';
import { settled } from './settled.ts';
import type { EntityRouting } from './shard-by.ts';
import { fixedBy, fixedReadShards, fixedShard } from './fixed-shard.ts';
import { broadcastReadShard, isBroadcast } from './broadcast.ts';

// One precedence for every routing decision: an explicit `{ shard }` (the callers' business), the entity's
// remembered shard (the callers' too), then its bind or the pinned shard, then the hand-written chooser, then the `shardBy` declaration, then the
// default (every shard for reads; for writes there is none). A broadcast entity is on every shard: after a bind or the
// pinned shard, one shard this entity manager uses answers for it, and the choosers are not asked. A hand-written chooser defers to the declaration by
// answering `undefined`. These three functions are all the read and write paths call to route.

/**
 * The shard of a new entity. A hand-written chooser's answer for a declared entity is checked against the
 * declaration (`SHARD_KEY_MISMATCH`; a directory records it for a new key). `label` names the entity in errors.
 */
export function shardOfNew(scope: ShardScope, entity: object, meta: EntityMetadata, label: () => string): MaybePromise<ShardId> {
  const route = scope.orm.shardKeys.of(meta);
  const fixed = fixedShard(scope, meta.className);
  if (fixed !== undefined) {
    return route === undefined ? fixed : settled(checkPlaced(scope, route, entity, fixed, fixedBy(scope, meta.className), label), () => fixed);
  }
  if (isBroadcast(scope.orm, meta)) {
    // Written to every shard: the choosers are not asked; the copy this entity manager keeps lives on a shard it uses.
    return broadcastReadShard(scope, meta.class as EntityName<object>);
  }
  const chooser = scope.orm.routing.shardChooser;
  if (chooser !== undefined) {
    const answer = callChooser('shardChooser', chooser, { entity, entityName: meta.className, em: scope.em }, label, entity);
    return settled(answer, shard => {
      if (route !== undefined && (shard === undefined || shard === null)) {
        return fromDeclaration(scope, route, entity, label);
      }
      const checked = checkShard(scope, shard, 'shardChooser', label, shard);
      return route === undefined ? checked : settled(checkPlaced(scope, route, entity, checked, 'shardChooser', label), () => checked);
    });
  }
  if (route === undefined) {
    throw ShardingError.missingChooser('shardChooser', [meta.className]);
  }
  return fromDeclaration(scope, route, entity, label);
}

/**
 * Checks a new declared entity whose shard was decided otherwise (`{ shard }`, the entity that reaches it, a
 * hand-written chooser): its key must map there, and an id that carries a bucket must carry its key's.
 */
export function checkPlaced(scope: ShardScope, route: EntityRouting, entity: object, shard: ShardId, source: string, label: () => string): MaybePromise<void> {
  const decided = checkDecided(scope, route, entity, shard, source, label);
  return route.ids === undefined ? decided : settled(decided, () => checkIdBucket(route, entity, shard, label));
}

function fromDeclaration(scope: ShardScope, route: EntityRouting, entity: object, label: () => string): MaybePromise<ShardId> {
  return settled(derivedShard(scope, route, entity, label), shard => {
    const checked = checkShard(scope, shard, route.source, label, shard);
    return route.ids === undefined ? checked : settled(checkIdBucket(route, entity, checked, label), () => checked);
  });
}

/** Where reads of an entity go whatever the key or query: its bind or the pinned shard, or a broadcast entity's one shard. */
function presetReadShards(scope: ShardScope, meta: EntityMetadata): readonly ShardId[] | undefined {
  const fixed = fixedReadShards(scope, meta.className);
  if (fixed !== undefined) {
    return fixed;
  }
  return isBroadcast(scope.orm, meta) ? [broadcastReadShard(scope, meta.class as EntityName<object>)] : undefined;
}

/** The shards a primary key may be on, in search order: the id chooser's, else the declaration's, else every shard. */
export function shardsOfId(scope: ShardScope, meta: EntityMetadata, id: unknown): MaybePromise<readonly ShardId[]> {
  const preset = presetReadShards(scope, meta);
  if (preset !== undefined) {
    return preset;
  }
  const route = scope.orm.shardKeys.of(meta);
  const chooser = scope.orm.routing.idChooser;
  const name = meta.className;
  if (chooser !== undefined) {
    const answer = callChooser('idChooser', chooser, { entityName: name, id: id as never, em: scope.em }, describeEntityName, id);
    return settled(answer, shards =>
      route !== undefined && (shards === undefined || shards === null)
        ? idFromDeclaration(scope, route, id)
        : checkShards(scope, shards, 'idChooser', name, id),
    );
  }
  return route === undefined ? scope.orm.shardIds : idFromDeclaration(scope, route, id);
}

function idFromDeclaration(scope: ShardScope, route: EntityRouting, id: unknown): MaybePromise<readonly ShardId[]> {
  return settled(shardOfPrimaryKey(route, id), shard =>
    shard === undefined ? everyShard(scope, route, 'findOne', id) : checkShards(scope, [shard], route.source, route.entityName, id),
  );
}

/** The shards a query runs on: the query chooser's, else those the declaration leaves (pruned by `where`), else every shard. */
export function shardsOfQuery(scope: ShardScope, meta: EntityMetadata, where: unknown, options: object, operation: string): MaybePromise<readonly ShardId[]> {
  const preset = presetReadShards(scope, meta);
  if (preset !== undefined) {
    return preset;
  }
  const route = scope.orm.shardKeys.of(meta);
  const chooser = scope.orm.routing.queryChooser;
  const name = meta.className;
  if (chooser !== undefined) {
    const args = {
      entityName: name,
      where: where as FilterQuery<object>,
      options: options as FindOptions<object, string, string, string>,
      em: scope.em,
      get shardKeys() {
        return route === undefined ? undefined : pinnedKeyValues(route, where);
      },
    };
    const answer = callChooser('queryChooser', chooser, args, describeEntityName, where);
    return settled(answer, shards =>
      route !== undefined && (shards === undefined || shards === null)
        ? queryFromDeclaration(scope, route, where, operation)
        : checkShards(scope, shards, 'queryChooser', name, where),
    );
  }
  return route === undefined ? scope.orm.shardIds : queryFromDeclaration(scope, route, where, operation);
}

function queryFromDeclaration(scope: ShardScope, route: EntityRouting, where: unknown, operation: string): MaybePromise<readonly ShardId[]> {
  return settled(shardsOfWhere(scope, route, where), (shards: ShardSet) => {
    if (shards === 'all') {
      return everyShard(scope, route, operation, where);
    }
    if (shards.length === 0) {
      // Nothing can match (`$in: []`, contradicting keys): one shard answers, as one database would.
      const home = shardWith(scope.orm, route.meta.class);
      return home === undefined ? [] : [home];
    }
    return checkShards(scope, shards, route.source, route.entityName, where);
  });
}

/** Every shard that holds the entity, unless its declaration requires the shard key. */
function everyShard(scope: ShardScope, route: EntityRouting, operation: string, where: unknown): readonly ShardId[] {
  const knowing = shardsKnowing(scope.orm, route.meta.class);
  if (route.requireShardKey && knowing.size > 1) {
    const key = route.parent === undefined ? route.label : `${route.label} (-> ${route.root.label})`;
    throw ShardingError.shardKeyRequired(route.entityName, operation, key, where);
  }
  const all = scope.orm.shardIds;
  return knowing.size === all.length ? all : all.filter(shard => knowing.has(shard));
}
