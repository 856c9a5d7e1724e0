import { ReferenceKind, type EntityMetadata } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { describe, ShardingError } from '../errors/errors.ts';
import { shardsKnowing } from '../fleet/fleet-metadata.ts';
import type { ShardedMikroORM } from '../ShardedMikroORM.ts';
import { IdGenerator } from '../strategies/ids.ts';
import { isBucketed, type BucketedStrategy, type ShardStrategy, type StrategyContext } from '../strategies/strategy.ts';
import { resolveBroadcast } from './broadcast.ts';

/**
 * An entity sharded by one of its own properties.
 *
 * @example
 * ```ts
 * Author: { key: 'tenantId', strategy: hash({ shards: ['s0', 's1', 's2', 's3'] }) }
 * ```
 */
export interface ShardKeyDeclaration {
  /** The scalar property whose value decides the shard (often the primary key, or a tenant id). */
  readonly key: string;
  /** Maps a key value to its shard: `hash(...)`, `jump(...)`, `range(...)`, `directory(...)` or your own. */
  readonly strategy: ShardStrategy;
  /**
   * The entity's primary key is made by this generator and carries its bucket, so a lookup by primary key goes to
   * one shard with no directory read. Needs a bucketed strategy (`hash`) with as many buckets as the ids carry.
   */
  readonly ids?: IdGenerator;
  /**
   * Refuse a query whose condition does not pin the shard key (it would read every shard) with `SHARD_KEY_REQUIRED`.
   * @default the `requireShardKey` option of `init()` (false)
   */
  readonly requireShardKey?: boolean;
}

/**
 * An entity that lives on its parent's shard, as a binding table does: `Book: { parent: 'author' }`.
 */
export interface ParentDeclaration {
  /** The to-one relation to the entity it follows; that entity must be in `shardBy` too. */
  readonly parent: string;
  /** As {@link ShardKeyDeclaration.ids}: its primary key carries the bucket of the entity it follows. */
  readonly ids?: IdGenerator;
  /** As {@link ShardKeyDeclaration.requireShardKey}. */
  readonly requireShardKey?: boolean;
}

/**
 * Reference data kept whole on every shard (countries, currencies): `Country: { broadcast: true }`. Writes go to
 * every shard in one transaction; reads go to one shard; any entity on any shard may reference it.
 */
export interface BroadcastDeclaration {
  readonly broadcast: true;
}

/** How one entity is sharded: by a key of its own, by following a parent, or not at all (broadcast to every shard). */
export type ShardByDeclaration = ShardKeyDeclaration | ParentDeclaration | BroadcastDeclaration;

/**
 * The `shardBy` option: entity name -> how it is sharded. From it the library derives where new entities go, which
 * shard a primary key is on, and which shards a query can find rows on.
 *
 * @example
 * ```ts
 * shardBy: {
 *   Author: { key: 'id', strategy: hash({ shards: ['s0', 's1', 's2', 's3'] }) },
 *   Book: { parent: 'author' },
 * }
 * ```
 */
export type ShardByOptions = Readonly<Record<string, ShardByDeclaration>>;

/** How the library routes one declared entity, resolved once per fleet from `shardBy` and the metadata. */
export interface EntityRouting {
  readonly entityName: string;
  readonly meta: EntityMetadata;
  /** `Author.tenantId`, `Book.author`: names the declaration in messages. */
  readonly label: string;
  /** `shardBy.Author`: who answered, in errors about an answer. */
  readonly source: string;
  /** The key property (keyed), or the parent relation (parent). */
  readonly property: string;
  /** Keyed: the strategy. */
  readonly strategy: ShardStrategy | undefined;
  /** Parent: the routing of the entity it follows. */
  readonly parent: EntityRouting | undefined;
  /** The keyed entity at the top of the parent chain (this one, when keyed): its strategy places them all. */
  readonly root: EntityRouting;
  readonly ids: IdGenerator | undefined;
  /** The single primary key property, if there is one. */
  readonly primaryKey: string | undefined;
  /** Keyed by its own single primary key. */
  readonly keyIsPrimary: boolean;
  /** Where the parent relation sits in a composite primary key (`[author, id]`), or -1. */
  readonly parentInKey: number;
  readonly requireShardKey: boolean;
  /** Handed to the strategy; made once. */
  readonly context: StrategyContext;
}

/** Options of `init()` that this module reads. */
export interface ShardByInput {
  readonly shardBy?: ShardByOptions;
  readonly requireShardKey?: boolean;
}

/**
 * The declared shard keys of one fleet, resolved and checked against its metadata at `init()`: nothing is looked up
 * by name on the routing path but this map.
 *
 * @internal
 */
export class ShardKeys {
  readonly #routes: ReadonlyMap<string, EntityRouting>;
  readonly #broadcast: ReadonlySet<string>;
  /** By entity name: the routes of the entities that follow it (`{ parent }` pointing at it). */
  readonly #followers: ReadonlyMap<string, readonly EntityRouting[]>;

  private constructor(routes: ReadonlyMap<string, EntityRouting>, broadcast: ReadonlySet<string> = new Set()) {
    this.#routes = routes;
    this.#broadcast = broadcast;
    const followers = new Map<string, EntityRouting[]>();
    for (const route of routes.values()) {
      if (route.parent !== undefined) {
        followers.set(route.parent.entityName, [...(followers.get(route.parent.entityName) ?? []), route]);
      }
    }
    this.#followers = followers;
  }

  /** No declarations: every entity is routed by the choosers alone. */
  static readonly none = new ShardKeys(new Map());

  /** Checks the declarations against the fleet; throws `INVALID_OPTIONS` naming the entity and what is wrong. */
  static resolve(orm: ShardedMikroORM, input: ShardByInput): ShardKeys {
    const { shardBy, requireShardKey = false } = input;
    if (typeof requireShardKey !== 'boolean') {
      throw ShardingError.invalidOptions(`\`requireShardKey\` must be true or false; got ${describe(requireShardKey)}.`, requireShardKey);
    }
    if (shardBy === undefined) {
      return ShardKeys.none;
    }
    if (shardBy === null || typeof shardBy !== 'object' || Array.isArray(shardBy)) {
      throw ShardingError.invalidOptions(
        `\`shardBy\` maps entity names to declarations ({ Author: { key: 'id', strategy } }); got ${describe(shardBy)}.`,
        shardBy,
      );
    }
    const routes = new Map<string, EntityRouting>();
    const broadcast = resolveBroadcast(orm, shardBy as Readonly<Record<string, unknown>>);
    const resolving = new Set<string>();
    const resolveOne = (name: string): EntityRouting => {
      const done = routes.get(name);
      if (done) {
        return done;
      }
      if (resolving.has(name)) {
        throw ShardingError.invalidOptions(`shardBy.${name} follows a chain of parents that leads back to ${name}; one entity in the chain needs a key.`);
      }
      resolving.add(name);
      const route = resolveDeclaration(orm, name, shardBy[name] as ShardKeyDeclaration | ParentDeclaration | undefined, requireShardKey, parentName => {
        if (!Object.hasOwn(shardBy, parentName)) {
          throw ShardingError.invalidOptions(
            `shardBy.${name} follows its parent ${parentName}, which is not in shardBy: declare how ${parentName} is sharded.`,
            parentName,
          );
        }
        if (broadcast.has(parentName)) {
          throw ShardingError.invalidOptions(
            `shardBy.${name} follows its parent ${parentName}, which is broadcast to every shard: it cannot place ${name}. Declare ${name}'s own key instead.`,
            parentName,
          );
        }
        return resolveOne(parentName);
      });
      resolving.delete(name);
      routes.set(name, route);
      return route;
    };
    for (const name of Object.keys(shardBy)) {
      if (!broadcast.has(name)) {
        resolveOne(name);
      }
    }
    return new ShardKeys(routes, broadcast);
  }

  /** Whether any entity is declared by a key or a parent (broadcast entities are not counted). */
  get size(): number {
    return this.#routes.size;
  }

  /** Whether any entity is declared broadcast. */
  get hasBroadcast(): boolean {
    return this.#broadcast.size > 0;
  }

  /** How an entity is routed (its own declaration, else its inheritance root's), or undefined when undeclared. */
  of(meta: EntityMetadata): EntityRouting | undefined {
    return this.#routes.get(meta.className) ?? (meta.root === meta ? undefined : this.#routes.get(meta.root.className));
  }

  /** Whether an entity (or its inheritance root) is broadcast to every shard. */
  isBroadcast(meta: EntityMetadata): boolean {
    return this.#broadcast.size > 0 && (this.#broadcast.has(meta.className) || this.#broadcast.has(meta.root.className));
  }

  /** The names of the broadcast entities. */
  get broadcast(): ReadonlySet<string> {
    return this.#broadcast;
  }

  /** The routes of the entities that follow this one directly (`{ parent }` pointing at it). */
  followersOf(entityName: string): readonly EntityRouting[] {
    return this.#followers.get(entityName) ?? [];
  }
}

function resolveDeclaration(
  orm: ShardedMikroORM,
  name: string,
  declaration: ShardKeyDeclaration | ParentDeclaration | undefined,
  requireDefault: boolean,
  resolveParent: (name: string) => EntityRouting,
): EntityRouting {
  const owner = `shardBy.${name}`;
  const home = orm.shardIds.find(id => orm.fleet.metadata(id).getByClassName(name, false) !== undefined);
  // A registry that starts empty (`shards: {}`, shards added on demand) declares the shared entities.
  const meta = (home === undefined ? (orm.shardIds.length === 0 ? orm.fleet.defaultMetadata : undefined) : orm.fleet.metadata(home))?.getByClassName(
    name,
    false,
  );
  if (meta === undefined) {
    throw ShardingError.invalidOptions(`${owner}: no shard declares an entity named ${describe(name)}; use the entity's name (its class name).`, name);
  }
  const knowing = shardsKnowing(orm, meta.class);
  if (declaration === null || typeof declaration !== 'object') {
    throw ShardingError.invalidOptions(`${owner} must be { key, strategy } or { parent }; got ${describe(declaration)}.`, declaration);
  }
  const { ids, requireShardKey = requireDefault } = declaration;
  if (typeof requireShardKey !== 'boolean') {
    throw ShardingError.invalidOptions(`${owner}.requireShardKey must be true or false; got ${describe(requireShardKey)}.`, requireShardKey);
  }
  if (ids !== undefined && !(ids instanceof IdGenerator)) {
    throw ShardingError.invalidOptions(`${owner}.ids must be an id generator made by idGenerator(); got ${describe(ids)}.`, ids);
  }
  const primaryKey = meta.primaryKeys.length === 1 ? meta.primaryKeys[0] : undefined;
  const context: StrategyContext = Object.freeze({ orm, entityName: name });
  const hasKey = 'key' in declaration && declaration.key !== undefined;
  const hasParent = 'parent' in declaration && declaration.parent !== undefined;
  if (hasKey === hasParent) {
    throw ShardingError.invalidOptions(`${owner} needs either \`key\` (with \`strategy\`) or \`parent\`, not ${hasKey ? 'both' : 'neither'}.`, declaration);
  }
  let route: EntityRouting;
  if (hasKey) {
    const { key, strategy } = declaration as ShardKeyDeclaration;
    const prop = meta.properties[key as never] as EntityMetadata['props'][number] | undefined;
    if (typeof key !== 'string' || !prop || prop.kind !== ReferenceKind.SCALAR || prop.persist === false) {
      throw ShardingError.invalidOptions(
        `${owner}.key ${describe(key)} is not a stored scalar property of ${name}${prop && prop.kind !== ReferenceKind.SCALAR ? ' (for a relation, declare { parent } instead)' : ''}.`,
        key,
      );
    }
    checkStrategy(owner, strategy);
    const self = {
      entityName: name,
      meta,
      label: `${name}.${key}`,
      source: owner,
      property: key,
      strategy,
      parent: undefined,
      ids,
      primaryKey,
      keyIsPrimary: key === primaryKey,
      parentInKey: -1,
      requireShardKey,
      context,
    } as Omit<EntityRouting, 'root'> & { root?: EntityRouting };
    self.root = self as EntityRouting;
    route = self as EntityRouting;
  } else {
    const { parent } = declaration as ParentDeclaration;
    const prop = typeof parent === 'string' ? meta.properties[parent as never] : undefined;
    const toOne = prop && (prop.kind === ReferenceKind.MANY_TO_ONE || (prop.kind === ReferenceKind.ONE_TO_ONE && prop.owner));
    if (!prop || !toOne || !prop.targetMeta) {
      throw ShardingError.invalidOptions(
        `${owner}.parent ${describe(parent)} is not a to-one relation of ${name} (a many-to-one, or the owning side of a one-to-one).`,
        parent,
      );
    }
    const parentRoute = resolveParent(prop.targetMeta.className);
    route = {
      entityName: name,
      meta,
      label: `${name}.${parent}`,
      source: owner,
      property: parent,
      strategy: undefined,
      parent: parentRoute,
      root: parentRoute.root,
      ids,
      primaryKey,
      keyIsPrimary: false,
      parentInKey: meta.primaryKeys.indexOf(parent),
      requireShardKey,
      context,
    };
  }
  if (ids !== undefined) {
    checkIds(owner, route, ids);
  }
  checkShards(orm, owner, route, knowing);
  if (route.strategy) {
    route.strategy.checkFleet?.(orm, owner);
  }
  return route;
}

function checkStrategy(owner: string, strategy: unknown): asserts strategy is ShardStrategy {
  const candidate = strategy as Partial<ShardStrategy> | null | undefined;
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.shardFor !== 'function' || typeof candidate.kind !== 'string') {
    throw ShardingError.invalidOptions(
      `${owner}.strategy must be a strategy ({ kind, shardFor(key) }, e.g. hash({ shards })); got ${describe(strategy)}.`,
      strategy,
    );
  }
}

function checkIds(owner: string, route: EntityRouting, ids: IdGenerator): void {
  const strategy = route.root.strategy!;
  if (route.primaryKey === undefined) {
    throw ShardingError.invalidOptions(`${owner}.ids needs a single primary key; ${route.entityName}'s is composite.`, ids);
  }
  if (!isBucketed(strategy)) {
    throw ShardingError.invalidOptions(
      `${owner}.ids routes ids by their bucket, but ${route.root.label} is sharded by a ${strategy.kind} strategy, which has no buckets; use hash().`,
      ids,
    );
  }
  if ((strategy as BucketedStrategy).buckets !== ids.buckets) {
    throw ShardingError.invalidOptions(
      `${owner}.ids carry ${ids.buckets} buckets, but ${route.root.label}'s strategy has ${(strategy as BucketedStrategy).buckets}; make them equal (idGenerator({ bucketBits }), hash({ buckets })).`,
      ids,
    );
  }
}

/** The shards a strategy names must be in the fleet and declare the entity (and each entity that follows it). */
function checkShards(orm: ShardedMikroORM, owner: string, route: EntityRouting, knowing: ReadonlySet<ShardId>): void {
  for (const shard of route.root.strategy!.shards ?? []) {
    if (!orm.fleet.has(shard)) {
      throw ShardingError.unknownShard(shard, orm.shardIds, { entity: route.entityName, source: `${owner}.strategy` });
    }
    if (!knowing.has(shard)) {
      throw ShardingError.entityNotOnShard(route.entityName, route.entityName, shard, [...knowing], `${owner}.strategy`, false);
    }
  }
}
