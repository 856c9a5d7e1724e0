import { defineEntity, p } from '@mikro-orm/core';
import { Int64StringType, ShardDirectoryEntry, type ShardedMikroORM, type ShardId } from 'mikro-orm-sharding';

/**
 * Entities sharded by declared keys: accounts by their tenant (not their primary key), invoices with their account,
 * orders by ids that carry their bucket and their lines with them, events by date ranges.
 */
export const AccountSchema = defineEntity({
  name: 'Account',
  properties: {
    id: p.integer().primary().autoincrement(false),
    tenantId: p.string().nullable(),
    name: p.string(),
    invoices: () => p.oneToMany(Invoice).mappedBy('account'),
  },
});
export class Account extends AccountSchema.class {}
AccountSchema.setClass(Account);

export const InvoiceSchema = defineEntity({
  name: 'Invoice',
  properties: {
    id: p.integer().primary().autoincrement(false),
    total: p.integer(),
    account: () => p.manyToOne(Account).nullable(),
  },
});
export class Invoice extends InvoiceSchema.class {}
InvoiceSchema.setClass(Invoice);

export const OrderSchema = defineEntity({
  name: 'Order',
  tableName: 'orders',
  properties: {
    id: p.type(Int64StringType).primary(),
    customer: p.string(),
    lines: () => p.oneToMany(OrderLine).mappedBy('order'),
  },
});
export class Order extends OrderSchema.class {}
OrderSchema.setClass(Order);

export const OrderLineSchema = defineEntity({
  name: 'OrderLine',
  properties: {
    id: p.type(Int64StringType).primary(),
    sku: p.string(),
    order: () => p.manyToOne(Order),
  },
});
export class OrderLine extends OrderLineSchema.class {}
OrderLineSchema.setClass(OrderLine);

export const TicketSchema = defineEntity({
  name: 'Ticket',
  properties: {
    id: p.type(Int64StringType).primary(),
    tenantId: p.string(),
    subject: p.string(),
  },
});
/** A ticket is sharded by its tenant, and its id carries the tenant's bucket. */
export class Ticket extends TicketSchema.class {}
TicketSchema.setClass(Ticket);

export const EventSchema = defineEntity({
  name: 'Event',
  properties: {
    id: p.integer().primary().autoincrement(false),
    at: p.datetime(),
    kind: p.string(),
  },
});
export class Event extends EventSchema.class {}
EventSchema.setClass(Event);

export const keyedEntities = [Account, Invoice, Order, OrderLine, Ticket, Event, ShardDirectoryEntry];

/**
 * Records which shards ran a query: give each shard's options `onQuery: queries.hook(shard)`. `during` returns the
 * shards that ran a select or a count while `run` ran, in the order they first did.
 */
export class QueryLog {
  readonly lines: { shard: ShardId; sql: string }[] = [];

  hook(shard: ShardId): (sql: string) => string {
    return sql => {
      this.lines.push({ shard, sql });
      return sql;
    };
  }

  async during(run: () => Promise<unknown>): Promise<{ shards: ShardId[]; queries: number }> {
    const start = this.lines.length;
    await run();
    const reads = this.lines.slice(start).filter(line => /^\s*select\b/i.test(line.sql));
    return { shards: [...new Set(reads.map(line => line.shard))], queries: reads.length };
  }
}

/** Shard options with a query log hook each. */
export function logged(shards: Record<string, object>, log: QueryLog): Record<string, object> {
  return Object.fromEntries(Object.entries(shards).map(([id, options]) => [id, { ...options, onQuery: log.hook(id) }]));
}

/** Rows of one table per shard, by raw SQL on each shard's own connection. */
export async function tableRows(orm: ShardedMikroORM, table: string, column = 'id'): Promise<Record<ShardId, string[]>> {
  const rows: Record<ShardId, string[]> = {};
  for (const id of orm.shardIds) {
    const found: Record<string, unknown>[] = await orm.shard(id).em.fork().getConnection().execute(`select ${column} as v from ${table} order by ${column}`);
    rows[id] = found.map(row => String(row.v));
  }
  return rows;
}
