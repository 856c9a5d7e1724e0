/**
 * What the documentation's samples leave to the reader, for test/docs.test.ts: a sample may use any name exported
 * here without declaring it. The fleet is getting-started.md's (its `entities.ts`) on four SQLite shards in the
 * page's temp directory, with its schema created. `declare`d names exist for type-checking only: a sample that
 * uses one must be a ```ts typecheck block.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineEntity, p } from '@mikro-orm/core';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, type IdChooser, type ShardChooser, type ShardedMikroORMOptions } from 'mikro-orm-sharding';
import { Author, Book } from './entities.ts';

export { defineEntity, p, type CountOptions, type FilterQuery, type FindOptions, type Primary } from '@mikro-orm/core';
export { PostgreSqlDriver } from '@mikro-orm/postgresql';
export { ShardedMikroORM, type ChosenShard, type ShardedEntityManager, type ShardId } from 'mikro-orm-sharding';
export { Author, Book, SqliteDriver };

export const shardIds = ['s0', 's1', 's2', 's3'] as const;
export type Shard = (typeof shardIds)[number];
export const authorShard = (authorId: number) => shardIds[authorId % shardIds.length]!;
export const shardChooser: ShardChooser = ({ entity, em }) =>
  entity instanceof Book ? (em.shardOf(entity.author) ?? authorShard(entity.author.id)) : authorShard((entity as Author).id);
export const idChooser: IdChooser = ({ entityName, id }) => (entityName === 'Author' ? [authorShard(Number(id))] : shardIds);

export const options: ShardedMikroORMOptions = {
  driver: SqliteDriver,
  entities: [Author, Book],
  shards: Object.fromEntries(shardIds.map(id => [id, { dbName: `prelude-${id}.db` }])),
  shardChooser,
  idChooser,
};
export const orm = await ShardedMikroORM.init(options);
await orm.schema.create();
export const em = orm.em.fork();

/** Values a sample refers to as if the reader had them at hand. */
export const lastSeenId = 0;
export const tenantId = 'acme';

const OrderSchema = defineEntity({
  name: 'Order',
  properties: { id: p.integer().primary(), createdAt: p.datetime() },
});
/** "`Order` here is any entity with a `createdAt: p.datetime()` property" (choosers.md). */
export class Order extends OrderSchema.class {}
OrderSchema.setClass(Order);

const UserSchema = defineEntity({ name: 'User', properties: { id: p.integer().primary() } });
export class User extends UserSchema.class {}
UserSchema.setClass(User);
const StockSchema = defineEntity({ name: 'Stock', properties: { sku: p.string().primary() } });
export class Stock extends StockSchema.class {}
StockSchema.setClass(Stock);
const AuditEntrySchema = defineEntity({ name: 'AuditEntry', properties: { id: p.integer().primary() } });
export class AuditEntry extends AuditEntrySchema.class {}
AuditEntrySchema.setClass(AuditEntry);

type Request = IncomingMessage & { params: Record<string, string>; get(header: string): string | undefined };
type Response = ServerResponse & { json(body: unknown): void };
/** An Express or Fastify app, as the web framework samples use one. */
export declare const app: {
  use(handler: (req: Request, res: Response, next: () => void) => unknown): void;
  addHook(hook: 'onRequest', handler: (request: Request, reply: Response, done: () => void) => unknown): void;
  get(path: string, handler: (req: Request, res: Response) => unknown): void;
};
