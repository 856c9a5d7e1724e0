import { Reference, type Dictionary, type EntityName } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { managedEntities, metaOf } from '../mikro-internals.ts';
import { checkEntityOnShard } from '../route.ts';
import { onEveryShard } from '../routing/broadcast.ts';
import { keyChanges } from '../routing/key-changes.ts';
import { ownKey, shardOfOwnKey } from '../routing/place.ts';
import { isReadOnly } from '../routing/read-only.ts';
import type { EntityRouting } from '../routing/shard-by.ts';
import type { ShardScope } from '../scope.ts';
import { notPostgres } from '../transactions/start.ts';
import type { TransactionMode } from '../transactions/settings.ts';
import { labelOf } from '../write/write-plan.ts';

/**
 * The rows one flush moves, as far as this entity manager holds them: every entity that goes to another shard (an
 * entity whose shard key changed, one given to `em.move()`, and the loaded or new entities that follow them through
 * `{ parent }`), with the shard it leaves and the shard it goes to. Followers not loaded are found in the database
 * when the move runs.
 */
export interface MovePlan {
  readonly targets: ReadonlyMap<object, ShardId>;
  readonly sources: ReadonlyMap<object, ShardId>;
  /** New followers, placed on the old shard but not written yet: they are persisted on the new shard instead. */
  readonly fresh: ReadonlySet<object>;
}

/** What planning needs besides the entity manager's forks. */
export interface MoveRequests {
  /** The `em.move()` calls since the last flush: entity -> shard. */
  readonly requests: ReadonlyMap<object, ShardId>;
  /** New entities placed by earlier reads and not written yet, with their shard (asked only when something moves). */
  readonly placed: () => Iterable<readonly [object, ShardId]>;
  /** The mode of the transaction the flush runs in (undefined outside one). */
  readonly mode: TransactionMode | undefined;
}

/**
 * Finds the moves of a flush, and refuses one that cannot be carried out, before anything is written: the fleet has no
 * two-phase commit (`SHARD_KEY_CHANGED` for a changed key, `MOVE_NOT_POSSIBLE` for `em.move()`, naming why), a shard
 * is read-only (`READ_ONLY_SHARD`) or lacks the entity (`ENTITY_NOT_ON_SHARD`), ids carry their bucket. Undefined when
 * nothing moves.
 */
export async function planMoves(scope: ShardScope, input: MoveRequests): Promise<MovePlan | undefined> {
  const changes = await keyChanges(scope);
  if (changes.length === 0 && input.requests.size === 0) {
    return undefined;
  }
  const targets = new Map<object, ShardId>();
  const sources = new Map<object, ShardId>();
  const explicit = new Set<object>();
  for (const change of changes) {
    if (!removed(scope, change.entity, change.from)) {
      targets.set(change.entity, change.to);
      sources.set(change.entity, change.from);
    }
  }
  for (const [entity, to] of input.requests) {
    const from = scope.shardOf(entity);
    // Moved already (by a transaction of this entity manager, say), or removed in this flush: nothing to move.
    if (from === to || targets.get(entity) === to || (from !== undefined && removed(scope, entity, from))) {
      continue;
    }
    sourceOf(scope, entity, from, to);
    await checkRequested(scope, entity, from, to, targets);
    targets.set(entity, to);
    sources.set(entity, from);
    explicit.add(entity);
  }
  if (targets.size === 0) {
    return undefined;
  }
  const roots = [...targets.keys()];
  for (const entity of roots) {
    const reason = whyNot(scope, entity, input.mode);
    if (reason !== undefined) {
      throw refusal(scope, entity, sources.get(entity)!, targets.get(entity)!, reason, explicit.has(entity));
    }
  }
  const fresh = new Set<object>();
  addFollowers(scope, targets, sources, fresh, input.placed());
  for (const [entity, to] of targets) {
    checkShards(scope, entity, sources.get(entity)!, to, explicit.has(entity));
  }
  return { targets, sources, fresh };
}

/** An entity given to `em.move()` must have a shard, and be managed by this entity manager's fork of it. */
function sourceOf(scope: ShardScope, entity: object, from: ShardId | undefined, to: ShardId): asserts from is ShardId {
  if (from === undefined) {
    throw ShardingError.unplacedEntity('move', labelOf(entity));
  }
  const fork = scope.forks.get(from);
  if (fork === undefined || fork.getUnitOfWork(false).getIdentityMap().getByEntity(entity) !== entity) {
    throw ShardingError.moveNotPossible(
      labelOf(entity),
      from,
      to,
      'this entity manager does not manage it (it was loaded by another one); load it through this one, or call move() on the one that loaded it',
    );
  }
}

/** Whether the flush removes the entity: then it does not move. */
function removed(scope: ShardScope, entity: object, shard: ShardId): boolean {
  return scope.forks.get(shard)?.getUnitOfWork(false).getRemoveStack().has(entity) === true;
}

/**
 * `em.move()` of a declared entity: its key must map to the shard asked for (a directory records it for a key it
 * does not know), or, for an entity that follows a parent, the parent must be there or go there.
 */
async function checkRequested(scope: ShardScope, entity: object, from: ShardId, to: ShardId, targets: ReadonlyMap<object, ShardId>): Promise<void> {
  const meta = metaOf(entity);
  if (onEveryShard(scope.orm, entity)) {
    throw ShardingError.moveNotPossible(labelOf(entity), from, to, `${meta.className} is broadcast: its rows are on every shard already`);
  }
  const route = scope.orm.shardKeys.of(meta);
  if (route === undefined) {
    return;
  }
  const found = await shardOfOwnKey(scope, route, entity, to, () => labelOf(entity));
  if (found === undefined || found === to) {
    return;
  }
  if (route.parent !== undefined) {
    const parent = (entity as Dictionary)[route.property];
    if (parent !== null && parent !== undefined && targets.get(Reference.unwrapReference(parent as object)) === to) {
      return;
    }
  }
  const how =
    route.parent === undefined
      ? `change ${route.property} instead: the row then moves where its key maps`
      : `it lives on the shard of its ${route.property}: move that, and it follows`;
  throw ShardingError.moveNotPossible(
    labelOf(entity),
    from,
    to,
    `its shard key ${route.label}${keyText(ownKey(route, entity))} maps to shard ${describe(found)}, and ${route.entityName} is sharded by it; ${how}`,
  );
}

/** Why a move cannot be carried out at all: the fleet, the transaction, or ids that carry their bucket. */
function whyNot(scope: ShardScope, entity: object, mode: TransactionMode | undefined): string | undefined {
  const orm = scope.orm;
  if (orm.transactionConfig.twoPhase === undefined) {
    const other = notPostgres(orm);
    return other === undefined
      ? 'rows move between shards in one two-phase commit, and this fleet has no `twoPhaseCommit` in init() (see docs/transactions.md)'
      : `rows move between shards in one two-phase commit, which needs PostgreSQL on every shard, and shard ${describe(other.shard)} is ${other.family === 'sqlite' ? 'SQLite' : `a ${other.platform} database`}`;
  }
  if (mode !== undefined && mode !== 'twopc') {
    return `this entity manager's transaction is in mode '${mode}', and a move is all or nothing only in mode 'twopc'; run it in a 'twopc' transaction, or outside any`;
  }
  for (const route of followerClosure(scope, metaOf(entity).className, true)) {
    if (route.ids !== undefined) {
      return `${route.entityName}'s ids carry their bucket (\`ids\` in shardBy.${route.entityName}), and a moved row would keep an id whose bucket names its old shard, so lookups by id would miss it`;
    }
  }
  return undefined;
}

function refusal(scope: ShardScope, entity: object, from: ShardId, to: ShardId, reason: string, explicit: boolean): ShardingError {
  const route = scope.orm.shardKeys.of(metaOf(entity));
  if (explicit || route === undefined) {
    return ShardingError.moveNotPossible(labelOf(entity), from, to, reason);
  }
  return ShardingError.shardKeyChanged(labelOf(entity), route.label, ownKey(route, entity), to, from, reason);
}

/** Both shards must be writable, and the target must declare the entity and every entity that follows it. */
function checkShards(scope: ShardScope, entity: object, from: ShardId, to: ShardId, explicit: boolean): void {
  const fleet = scope.orm.fleet;
  const label = () => labelOf(entity);
  if (isReadOnly(fleet, from)) {
    throw ShardingError.readOnlyShard('move', label(), from, 'the shard it lives on');
  }
  const source = explicit ? 'em.move()' : 'its shard key';
  if (isReadOnly(fleet, to)) {
    throw ShardingError.readOnlyShard('move', label(), to, source);
  }
  const meta = metaOf(entity);
  checkEntityOnShard(scope, meta.class as EntityName<object>, to, source, true, label);
  for (const route of followerClosure(scope, meta.className, false)) {
    checkEntityOnShard(scope, route.meta.class as EntityName<object>, to, `shardBy.${route.entityName} (it follows ${meta.className})`, true, label);
  }
}

/** The routes of the entities that follow an entity, directly or through others (and its own first, with `self`). */
export function followerClosure(scope: ShardScope, entityName: string, self: boolean): EntityRouting[] {
  const keys = scope.orm.shardKeys;
  const found: EntityRouting[] = [];
  if (self) {
    const own = keys.of(scope.meta(entityName as unknown as EntityName<object>));
    if (own !== undefined) {
      found.push(own);
    }
  }
  const seen = new Set<string>([entityName]);
  const visit = (name: string) => {
    for (const route of keys.followersOf(name)) {
      if (!seen.has(route.entityName)) {
        seen.add(route.entityName);
        found.push(route);
        visit(route.entityName);
      }
    }
  };
  visit(entityName);
  return found;
}

/**
 * Adds the entities that follow a moving one through `{ parent }` (the loaded ones, and new ones placed earlier),
 * transitively: they go where it goes. An entity whose parent was changed (in memory) to a moving one moves too; one
 * whose parent was changed away from it stays, and so does one the flush removes.
 */
function addFollowers(
  scope: ShardScope,
  targets: Map<object, ShardId>,
  sources: Map<object, ShardId>,
  fresh: Set<object>,
  placed: Iterable<readonly [object, ShardId]>,
): void {
  const keys = scope.orm.shardKeys;
  const follow = (entity: object, shard: ShardId): boolean => {
    const route = keys.of(metaOf(entity));
    if (route?.parent === undefined) {
      return false;
    }
    const parent = (entity as Dictionary)[route.property];
    if (parent === null || parent === undefined) {
      return false;
    }
    const to = targets.get(Reference.unwrapReference(parent as object));
    // One the flush removes is deleted where it is (before the rows it followed leave).
    if (to === undefined || targets.get(entity) === to || removed(scope, entity, shard)) {
      return false;
    }
    targets.set(entity, to);
    if (!sources.has(entity)) {
      sources.set(entity, shard);
    }
    return true;
  };
  const newOnes = [...placed];
  for (let grew = true; grew;) {
    grew = false;
    for (const [shard, fork] of scope.forks) {
      for (const entity of managedEntities(fork)) {
        grew = follow(entity, shard) || grew;
      }
    }
    for (const [entity, shard] of newOnes) {
      if (follow(entity, shard)) {
        fresh.add(entity);
        grew = true;
      }
    }
  }
}

function keyText(value: unknown): string {
  const text = describe(value);
  return value === undefined || text.startsWith('(') ? '' : ` ${text}`;
}
