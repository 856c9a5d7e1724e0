/**
 * Type-checked (never run) in the fresh npm project of test/package.test.ts: the published declarations are
 * real types, not `any`, and keep internals out. Each `@ts-expect-error` fails the check if its line compiles.
 * (Left out of the workspace's own type-check, where the library's source still has its internals.)
 */
import type { EntityManager, Loaded } from '@mikro-orm/core';
import { ShardedEntityManager, ShardedSchema, ShardingError, type ShardId, type ShardingErrorCode } from 'mikro-orm-sharding';
import { comparatorOf, type SortKey } from 'mikro-orm-sharding/merge';
// @ts-expect-error the merge helpers are exported from `mikro-orm-sharding/merge`, not the main entry
import { mergeSorted } from 'mikro-orm-sharding';

declare const em: ShardedEntityManager;
declare class Thing {
  id: number;
  name: string;
}

const fork: EntityManager = em.on('s0');
const shard: ShardId | undefined = em.shardOf(new Thing());
const found: Promise<Loaded<Thing, never>[]> = em.find(Thing, { name: 'x' });
// @ts-expect-error `where` is typed by the entity
void em.find(Thing, { nope: 1 });
// @ts-expect-error a shard id is a string
void em.on(42);

const code: ShardingErrorCode = new ShardingError('UNKNOWN_SHARD', 'message').code;
// @ts-expect-error codes are a closed union
const wrong: ShardingErrorCode = 'NOT_A_CODE';

const keys: SortKey<Thing>[] = [{ read: thing => thing.name, direction: 1, kind: 'string', nulls: 'last' }];
const compare: (a: Thing, b: Thing) => number = comparatorOf(keys);

// @ts-expect-error internal: stripped from the published declarations
void ShardedEntityManager.global;
// @ts-expect-error internal: the constructor takes no fleet in the published declarations (use `orm.schema`)
new ShardedSchema(em.orm);

export { code, compare, fork, found, mergeSorted, shard, wrong };
