import { EntitySchema, MikroORM, ReferenceKind, type EntityMetadata, type EntityName, type IDatabaseDriver, type MetadataStorage } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import type { Binds, EntityList, ShardOptions } from '../options.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { metadataOf } from '../fleet/fleet-metadata.ts';
import type { Fleet } from '../fleet/fleet.ts';

// Named databases: an entity bound to a shard lives there and nowhere else. `init()` checks the binds and gives each
// shard its entities; the routing path asks `boundShard()` before any chooser.

/** The binds in force, by entity class name. */
export interface ResolvedBinds {
  readonly byName: Readonly<Record<string, ShardId>>;
  readonly defaultBind: ShardId | undefined;
}

/** What `init()` is given about binds. */
export interface BindOptions {
  readonly binds?: Binds;
  readonly defaultBind?: ShardId;
}

/** Checks the shape of `binds`/`defaultBind` and that they name configured shards, before anything is opened. */
export function checkBindOptions({ binds, defaultBind }: BindOptions, shardIds: readonly ShardId[]): void {
  if (defaultBind !== undefined && !shardIds.includes(defaultBind)) {
    throw ShardingError.unknownShard(defaultBind, shardIds, { source: 'the `defaultBind` option' });
  }
  if (binds === undefined) {
    return;
  }
  if (binds === null || typeof binds !== 'object' || Array.isArray(binds)) {
    throw ShardingError.invalidOptions(
      `\`binds\` must map entity names to shard ids (\`{ Transaction: 'warehouse' }\`), or be a Map from entity classes to shard ids; got ${describe(binds)}.`,
      binds,
    );
  }
  for (const [entity, shard] of entriesOf(binds)) {
    if (typeof entity !== 'string' && typeof entity !== 'function' && !EntitySchema.is(entity)) {
      throw ShardingError.invalidOptions(`\`binds\` keys must be entity names or classes; got ${describe(entity)}.`, entity);
    }
    if (!shardIds.includes(shard)) {
      throw ShardingError.unknownShard(shard, shardIds, { entity: nameOf(entity), source: 'the `binds` option' });
    }
  }
}

/**
 * The entities each shard gets when binds are given and the shard does not list its own: the entities bound to it,
 * or, for a shard no bind names, every entity no bind names. Embeddables and abstract entities go everywhere. The
 * shared `entities` are discovered once by a MikroORM that never connects (MikroORM's synchronous discovery), so
 * that classes, schemas and inheritance are read as MikroORM reads them. Shards listed in `own` keep their lists.
 */
export function deriveShardEntities<D extends IDatabaseDriver>(
  configs: Map<ShardId, ShardOptions<D>>,
  shared: EntityList | undefined,
  own: ReadonlySet<ShardId>,
  options: BindOptions,
): void {
  const derived = [...configs.keys()].filter(id => !own.has(id));
  if ((options.binds === undefined && options.defaultBind === undefined) || derived.length === 0 || !shared || shared.length === 0) {
    return;
  }
  const folder = shared.find(item => typeof item === 'string');
  if (folder !== undefined) {
    throw ShardingError.invalidOptions(
      `\`binds\` give each shard the entities bound to it, which needs \`entities\` as classes or schemas; got the path ${describe(folder)}. ` +
        'List each shard\u2019s own `entities` instead, or pass the classes.',
      folder,
    );
  }
  const first = configs.get(derived[0]!)!;
  const probe = new MikroORM<D>({
    ...first,
    entities: [...shared] as never,
    debug: false,
    contextName: 'mikro-orm-sharding:binds',
    discovery: { ...first.discovery, skipSyncDiscovery: false },
  } as never);
  try {
    const metadata = probe.getMetadata();
    const explicit = bindsByName(options.binds, [metadata]);
    const targets = new Set([...Object.values(explicit), ...(options.defaultBind === undefined ? [] : [options.defaultBind])]);
    for (const id of derived) {
      const entities = shared.filter(item => {
        const meta = metadata.find(item as EntityName<object>);
        if (!meta || meta.embeddable || meta.abstract) {
          return true;
        }
        const bound = explicitBind(explicit, meta);
        return targets.has(id) ? (bound ?? options.defaultBind) === id : bound === undefined;
      });
      const config = configs.get(id)!;
      // A shard left with no entity (every entity bound elsewhere) is still a database routing may name explicitly.
      const discovery = entities.length === 0 ? { ...config.discovery, warnWhenNoEntities: false } : config.discovery;
      configs.set(id, { ...config, entities: entities as never, discovery });
    }
  } finally {
    // It never connected: closing has nothing to wait for.
    void probe.close(true).catch(() => undefined);
  }
}

/**
 * Checks the binds against the shards' metadata once the fleet is open, and resolves them by class name: every
 * bound entity is declared on its shard, no relation joins a bound entity to one that lives elsewhere
 * (`CROSS_BIND_RELATION`), and without a shard chooser every entity is bound (`MISSING_CHOOSER`).
 */
export function resolveBinds(fleet: Fleet, options: BindOptions, hasChooser: boolean, broadcast: ReadonlySet<string> = new Set()): ResolvedBinds | undefined {
  if (options.binds === undefined && options.defaultBind === undefined) {
    return undefined;
  }
  const metadata = fleet.ids.map(id => fleet.metadata(id));
  const resolved: ResolvedBinds = { byName: bindsByName(options.binds, metadata), defaultBind: options.defaultBind };
  const entities = new Map<string, EntityMetadata>();
  metadata.forEach(storage => {
    for (const meta of storage.getAll().values()) {
      if (!entities.has(meta.className) && !meta.embeddable && !meta.abstract && !meta.pivotTable) {
        entities.set(meta.className, meta);
      }
    }
  });
  const unbound: string[] = [];
  // Bound entities first, so that a relation between a bound and an unbound entity is told from the bound side.
  const ordered = [...entities.values()].sort((a, b) => Number(bindOf(resolved, a) === undefined) - Number(bindOf(resolved, b) === undefined));
  for (const meta of ordered) {
    const shard = bindOf(resolved, meta);
    if (shard === undefined) {
      if (!meta.virtual) {
        unbound.push(meta.className);
      }
    } else if (fleet.metadata(shard).find(meta.class) === undefined) {
      const declaredOn = fleet.ids.filter(id => fleet.metadata(id).find(meta.class) !== undefined);
      throw ShardingError.entityNotOnShard(meta.className, meta.className, shard, declaredOn, 'the `binds` option', false);
    }
    for (const prop of meta.relations) {
      if (prop.kind === ReferenceKind.EMBEDDED || !prop.targetMeta || prop.targetMeta.embeddable) {
        continue;
      }
      const targetShard = bindOf(resolved, prop.targetMeta);
      // A broadcast entity is on every shard: any entity may reference it.
      if (targetShard !== shard && !broadcast.has(prop.targetMeta.className) && !broadcast.has(prop.targetMeta.root.className)) {
        throw ShardingError.crossBindRelation(meta.className, shard, prop.name, prop.targetMeta.className, targetShard);
      }
    }
  }
  if (!hasChooser && unbound.length > 0) {
    throw ShardingError.missingChooser('shardChooser', unbound);
  }
  return resolved;
}

const bindCache = new WeakMap<ShardedMikroORM, Map<unknown, ShardId | null>>();

/**
 * The shard an entity is bound to, or undefined when the choosers place it. Asked by every routed call, so it costs
 * one property read for a fleet without binds, and one map lookup per entity name after the first.
 */
export function boundShard(orm: ShardedMikroORM, entityName: EntityName<object> | string): ShardId | undefined {
  const binds = orm.routing.binds;
  if (binds === undefined) {
    return undefined;
  }
  let cache = bindCache.get(orm);
  if (!cache) {
    cache = new Map();
    bindCache.set(orm, cache);
  }
  let shard = cache.get(entityName);
  if (shard === undefined) {
    shard = bindOf(binds, metadataOf(orm, entityName as EntityName<object>)) ?? null;
    cache.set(entityName, shard);
  }
  return shard ?? undefined;
}

/** An entity's bind: its own, else its root entity's (a hierarchy shares tables), else the default bind. */
function bindOf(binds: ResolvedBinds, meta: EntityMetadata): ShardId | undefined {
  return explicitBind(binds.byName, meta) ?? binds.defaultBind;
}

function explicitBind(byName: Readonly<Record<string, ShardId>>, meta: EntityMetadata): ShardId | undefined {
  return Object.hasOwn(byName, meta.className) ? byName[meta.className] : Object.hasOwn(byName, meta.root.className) ? byName[meta.root.className] : undefined;
}

/** `binds` keyed by entity class name; a key that is no entity of these metadata is refused. */
function bindsByName(binds: Binds | undefined, metadata: readonly MetadataStorage[]): Record<string, ShardId> {
  const byName: Record<string, ShardId> = {};
  for (const [entity, shard] of entriesOf(binds ?? {})) {
    const meta = metadata.map(storage => storage.find(entity as EntityName<object>)).find(found => found !== undefined);
    if (!meta || meta.embeddable) {
      throw ShardingError.invalidOptions(
        `\`binds\` names ${describe(nameOf(entity))}, which is not an entity of any shard; check its name, or add it to \`entities\`.`,
        entity,
      );
    }
    byName[meta.className] = shard;
  }
  return byName;
}

function entriesOf(binds: Binds): [unknown, ShardId][] {
  return binds instanceof Map ? [...binds.entries()] : Object.entries(binds);
}

function nameOf(entity: unknown): string {
  if (typeof entity === 'string') {
    return entity;
  }
  if (EntitySchema.is(entity)) {
    return entity.meta.className;
  }
  return typeof entity === 'function' ? entity.name : String(entity);
}
