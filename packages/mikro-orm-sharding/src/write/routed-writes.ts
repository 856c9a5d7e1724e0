import {
  Collection,
  helper,
  Reference,
  ReferenceKind,
  Utils,
  type Dictionary,
  type EntityMetadata,
  type EntityName,
  type EntityProperty,
  type Primary,
} from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { MaybePromise, ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import { groupInto } from '../group.ts';
import { shardInIdentityMaps } from '../read/lookup.ts';
import { PendingWrites } from './pending-writes.ts';
import { onReadyFork, type ShardScope } from '../scope.ts';
import { checkEntityOnShard, checkShard } from '../route.ts';
import { settleEach } from '../fleet/settle.ts';
import { onShard } from '../errors/shard-failure.ts';
import { rememberShard } from './shard-of.ts';
import { checkDeclared, chooseShard, forEachRelated, labelOf, routedBy } from './write-plan.ts';
import { isReadOnly } from '../routing/read-only.ts';
import { isBroadcast, onEveryShard } from '../routing/broadcast.ts';
import { insertEverywhere, upsertEverywhere } from '../broadcast/writes.ts';
import { markWritten } from '../routing/read-your-writes.ts';

// `insert`/`insertMany` and `upsert`/`upsertMany`: rows are routed like new entities, every row is decided and
// checked before any shard is written, then each shard's own MikroORM call writes its rows.

/** The entity name and the rows of an `insert`/`upsert` call, read as MikroORM reads its arguments. */
export function rowsOf<Entity extends object>(
  target: EntityName<Entity> | Entity | readonly Entity[],
  data: readonly unknown[] | undefined,
): [EntityName<Entity>, readonly object[]] {
  if (data !== undefined) {
    return [target as EntityName<Entity>, data as readonly object[]];
  }
  const rows = (Array.isArray(target) ? target : [target]) as readonly object[];
  return [rows[0]?.constructor as EntityName<Entity>, rows];
}

/** Inserts rows; resolves to their primary keys in input order. One row goes through MikroORM's `insert`. */
export async function insertMany<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  rows: readonly object[],
  options: object,
  shard: ShardId | undefined,
): Promise<unknown[]> {
  if (rows.length === 0) {
    return [];
  }
  if (shard === undefined && scope.orm.shardKeys.hasBroadcast && isBroadcast(scope.orm, scope.meta(entityName))) {
    return insertEverywhere(scope, entityName as EntityName<object>, rows, options);
  }
  const shards = await routeRows(scope, entityName as EntityName<object>, rows, shard, 'insert');
  const meta = scope.meta(entityName);
  markWritten(scope, shards);
  const written =
    rows.length === 1
      ? [await onReadyFork(scope, shards[0]!, fork => fork.insert(entityName, rows[0] as never, options))]
      : await writeGroups(
          scope,
          'insertMany',
          shards,
          rows,
          (fork, group) => fork.insertMany(entityName, group as never, options),
          row => primaryKeyOfRow(meta, row),
        );
  // MikroORM does not manage an inserted entity (nor tell its entity manager); remember where it went.
  rows.forEach((row, i) => Utils.isEntity(row) && rememberShard(row, shards[i]!));
  return written;
}

/** Upserts rows; resolves to the managed entities (each on its shard's fork) in input order. One row goes through `upsert`. */
export async function upsertMany<T extends object>(
  scope: ShardScope,
  entityName: EntityName<T>,
  rows: readonly object[],
  options: object,
  shard: ShardId | undefined,
  operation: 'upsert' | 'upsertMany',
): Promise<object[]> {
  if (rows.length === 0) {
    return [];
  }
  if (shard === undefined && scope.orm.shardKeys.hasBroadcast && isBroadcast(scope.orm, scope.meta(entityName))) {
    return upsertEverywhere(scope, entityName as EntityName<object>, rows, options, operation === 'upsert');
  }
  const shards = await routeRows(scope, entityName as EntityName<object>, rows, shard, operation);
  markWritten(scope, shards);
  if (operation === 'upsert') {
    return [await onReadyFork(scope, shards[0]!, fork => fork.upsert(entityName, rows[0] as never, options))];
  }
  return writeGroups(
    scope,
    'upsertMany',
    shards,
    rows,
    (fork, group) => fork.upsertMany(entityName, group as never, options),
    () => undefined,
  );
}

/**
 * Decides the shard of every row, and checks each, before anything is written: `{ shard }`, else the shard of an
 * entity already known (an entity row, or a data row whose primary key an identity map holds), else the shard
 * chooser, given the entity row itself or an entity built from the data. A relation to an entity on another shard
 * is refused (`CROSS_SHARD_REFERENCE`), as is a shard that does not hold the entity.
 */
async function routeRows(
  scope: ShardScope,
  entityName: EntityName<object>,
  rows: readonly object[],
  explicit: ShardId | undefined,
  operation: string,
): Promise<ShardId[]> {
  if (explicit !== undefined) {
    scope.fork(explicit, 'the { shard } option');
  }
  const meta = scope.meta(entityName);
  const knowing = shardsKnowing(scope.orm, entityName);
  const declared = scope.orm.shardKeys.of(meta) !== undefined;
  const shards: ShardId[] = [];
  let views: SqlEntityManager | undefined;
  for (const row of rows) {
    const entity = Utils.isEntity(row);
    let shard: MaybePromise<ShardId> | undefined = entity
      ? known(scope, operation, row, explicit)
      : (explicit ?? knownByKey(scope, entityName, meta, row as Dictionary));
    if (shard === undefined) {
      // A throwaway staging fork per call: views and the references they hold are dropped with it.
      views ??= new PendingWrites(scope).stagingFork(entityName);
      shard = chooseShard(scope, entity ? row : viewOf(scope, views, meta, row as Dictionary), meta);
    } else if (explicit !== undefined && declared && !(entity && scope.shardOf(row) !== undefined)) {
      // `{ shard }` for a new row of a declared entity: its key must agree (a directory records it).
      views ??= new PendingWrites(scope).stagingFork(entityName);
      await checkDeclared(scope, entity ? row : viewOf(scope, views, meta, row as Dictionary), explicit, 'the { shard } option');
    }
    const decided = shard instanceof Promise ? await shard : shard;
    const source = explicit === undefined ? 'shardChooser' : 'the { shard } option';
    checkShard(scope, decided, source, () => labelOfRow(meta, row), decided);
    if (!knowing.has(decided)) {
      checkEntityOnShard(scope, entityName, decided, explicit === undefined ? routedBy(scope, entityName) : source, true, () => labelOfRow(meta, row));
    }
    if (isReadOnly(scope.orm.fleet, decided)) {
      throw ShardingError.readOnlyShard(operation, labelOfRow(meta, row), decided, explicit === undefined ? routedBy(scope, entityName) : source);
    }
    checkRelations(scope, meta, row, decided);
    shards.push(decided);
  }
  return shards;
}

/** The shard of an entity row: `{ shard }` must agree with the one it lives on. */
function known(scope: ShardScope, operation: string, entity: object, explicit: ShardId | undefined): ShardId | undefined {
  const shard = scope.shardOf(entity);
  if (explicit !== undefined && shard !== undefined && shard !== explicit) {
    throw ShardingError.shardMismatch(operation, labelOf(entity), shard, explicit);
  }
  return explicit ?? shard;
}

/** The shard whose identity map holds the entity with a data row's primary key, as MikroORM's upsert looks there first. */
function knownByKey(scope: ShardScope, entityName: EntityName<object>, meta: EntityMetadata, row: Dictionary): ShardId | undefined {
  const pk = primaryKeyOfRow(meta, row);
  return pk === undefined ? undefined : shardInIdentityMaps(scope, entityName, pk as Primary<object>);
}

function primaryKeyOfRow(meta: EntityMetadata, row: object): unknown {
  const pk = Utils.isEntity(row) ? helper(row).getPrimaryKey() : Utils.extractPK(row, meta);
  return pk === null || pk === undefined || (Array.isArray(pk) && pk.some(part => part === null || part === undefined)) ? undefined : pk;
}

/**
 * An entity built from a data row, for the shard chooser: what `em.create()` would make, on a staging fork, except
 * that a related entity given by primary key is the one this entity manager holds, if it holds it (so that
 * `em.shardOf(entity.author)` knows its shard). Related entities are set on the view without MikroORM's propagation,
 * so no collection of a managed entity gains the view; to-many relations are left out.
 */
function viewOf(scope: ShardScope, fork: SqlEntityManager, meta: EntityMetadata, row: Dictionary): object {
  let data = row;
  const related: [string, object][] = [];
  for (const prop of meta.relations) {
    const value = row[prop.name];
    const toMany = prop.kind === ReferenceKind.ONE_TO_MANY || prop.kind === ReferenceKind.MANY_TO_MANY;
    const target = toMany ? undefined : relatedEntity(scope, prop, value);
    if (!toMany && target === undefined) {
      continue;
    }
    if (data === row) {
      data = { ...row };
    }
    delete data[prop.name];
    if (target !== undefined) {
      related.push([prop.name, Reference.wrapReference(target, prop)]);
    }
  }
  const view = fork.create(meta.class, data, { persist: false, partial: true }) as Dictionary;
  for (const [name, value] of related) {
    Object.defineProperty(view, name, { value, enumerable: true, configurable: true, writable: true });
  }
  return view;
}

/** The entity a to-one value of a data row names: an entity or reference, or a primary key an identity map holds. */
function relatedEntity(scope: ShardScope, prop: EntityProperty, value: unknown): object | undefined {
  if (value === null || value === undefined) {
    return undefined;
  }
  if (Utils.isEntity(value, true)) {
    return Reference.unwrapReference(value as object);
  }
  const target = prop.targetMeta;
  if (!target || !Utils.isPrimaryKey(value, target.compositePK)) {
    return undefined;
  }
  const shard = shardInIdentityMaps(scope, target.class, value as Primary<object>);
  return shard === undefined ? undefined : scope.fork(shard).getReference(target.class, value as Primary<object>);
}

/** Refuses a row that references an entity living on another shard (a foreign key cannot cross databases). */
function checkRelations(scope: ShardScope, meta: EntityMetadata, row: object, shard: ShardId): void {
  const check = (target: object, property: string) => {
    const targetShard = scope.shardOf(target);
    if (targetShard !== undefined && targetShard !== shard && !onEveryShard(scope.orm, Reference.unwrapReference(target))) {
      throw ShardingError.crossShardReference(labelOfRow(meta, row), shard, property, labelOf(Reference.unwrapReference(target)), targetShard);
    }
  };
  if (Utils.isEntity(row)) {
    forEachRelated(row, (target, prop) => check(target, prop.name));
    return;
  }
  for (const prop of meta.relations) {
    const value = (row as Dictionary)[prop.name];
    const items =
      value instanceof Collection
        ? value.getItems(false)
        : Array.isArray(value) && prop.kind !== ReferenceKind.MANY_TO_ONE && prop.kind !== ReferenceKind.ONE_TO_ONE
          ? value
          : [value];
    for (const item of items) {
      const target = relatedEntity(scope, prop, item);
      if (target !== undefined) {
        check(target, prop.name);
      }
    }
  }
}

/** `Book#12` for a row with a primary key, `new Book` for one without (as {@link labelOf} labels entities). */
function labelOfRow(meta: EntityMetadata, row: object): string {
  if (Utils.isEntity(row)) {
    return labelOf(row);
  }
  const pk = primaryKeyOfRow(meta, row);
  return pk === undefined ? `new ${meta.className}` : `${meta.className}#${Array.isArray(pk) ? pk.join('~~~') : String(pk)}`;
}

/**
 * Writes each shard's rows with one MikroORM call (shards in parallel) and puts the answers back in input order.
 * Where a shard's answer lacks an item (MikroORM's `insertMany` gives only the last id on SQLite, and `[undefined]`
 * on PostgreSQL, for keys it did not generate), `fallback` answers for the row; when that does not know either, the
 * shards' answers are given as they came.
 */
async function writeGroups<T>(
  scope: ShardScope,
  operation: string,
  shards: readonly ShardId[],
  rows: readonly object[],
  write: (fork: SqlEntityManager, rows: object[]) => Promise<T[]>,
  fallback: (row: object) => T | undefined,
): Promise<T[]> {
  const groups = new Map<ShardId, number[]>();
  shards.forEach((shard, i) => groupInto(groups, shard, i));
  const ids = [...groups.keys()];
  const run = (shard: ShardId) =>
    onReadyFork(scope, shard, fork =>
      write(
        fork,
        groups.get(shard)!.map(i => rows[i]!),
      ),
    );
  const answers = ids.length === 1 ? [await onShard(operation, ids[0]!, run(ids[0]!))] : await settleEach(operation, ids, run, () => true);
  const inOrder: (T | undefined)[] = new Array(rows.length);
  let complete = true;
  ids.forEach((shard, n) => {
    const group = groups.get(shard)!;
    const answer = answers[n]!;
    group.forEach((row, i) => {
      inOrder[row] = (answer.length === group.length ? answer[i] : undefined) ?? fallback(rows[row]!);
      complete &&= inOrder[row] !== undefined;
    });
  });
  return complete ? (inOrder as T[]) : answers.flat();
}
