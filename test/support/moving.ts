import { defineEntity, p } from '@mikro-orm/core';

/**
 * Entities for moves and broadcast entities: customers sharded by their tier (a range), with purchases and their
 * items following them, labels and countries broadcast to every shard, notes that reference a customer without
 * following it, friendships between customers (a many-to-many), and receipts routed by hand (hot and archive).
 */
export const CountrySchema = defineEntity({
  name: 'Country',
  properties: {
    code: p.string().primary(),
    name: p.string(),
    currency: p.string().nullable(),
  },
});
export class Country extends CountrySchema.class {}
CountrySchema.setClass(Country);

export const LabelSchema = defineEntity({
  name: 'Label',
  properties: {
    id: p.integer().primary().autoincrement(false),
    text: p.string(),
  },
});
export class Label extends LabelSchema.class {}
LabelSchema.setClass(Label);

export const CustomerSchema = defineEntity({
  name: 'Customer',
  properties: {
    id: p.integer().primary().autoincrement(false),
    tier: p.integer(),
    name: p.string(),
    version: p.integer().version(),
    country: () => p.manyToOne(Country).nullable(),
    purchases: () => p.oneToMany(Purchase).mappedBy('customer'),
    labels: () => p.manyToMany(Label).owner(),
    friends: () => p.manyToMany(Customer).owner(),
  },
});
export class Customer extends CustomerSchema.class {}
CustomerSchema.setClass(Customer);

export const PurchaseSchema = defineEntity({
  name: 'Purchase',
  properties: {
    id: p.integer().primary().autoincrement(false),
    total: p.integer(),
    meta: p.json<{ tags: string[] }>().nullable(),
    customer: () => p.manyToOne(Customer),
    items: () => p.oneToMany(PurchaseItem).mappedBy('purchase'),
  },
});
export class Purchase extends PurchaseSchema.class {}
PurchaseSchema.setClass(Purchase);

export const PurchaseItemSchema = defineEntity({
  name: 'PurchaseItem',
  properties: {
    id: p.integer().primary().autoincrement(false),
    sku: p.string(),
    purchase: () => p.manyToOne(Purchase),
  },
});
export class PurchaseItem extends PurchaseItemSchema.class {}
PurchaseItemSchema.setClass(PurchaseItem);

export const NoteSchema = defineEntity({
  name: 'Note',
  properties: {
    id: p.integer().primary().autoincrement(false),
    text: p.string(),
    customer: () => p.manyToOne(Customer).nullable(),
  },
});
/** References a customer without following it (not in shardBy with `parent`). */
export class Note extends NoteSchema.class {}
NoteSchema.setClass(Note);

export const ReceiptSchema = defineEntity({
  name: 'Receipt',
  properties: {
    id: p.integer().primary().autoincrement(false),
    total: p.integer(),
    issuedOn: p.string(),
    lines: () => p.oneToMany(ReceiptLine).mappedBy('receipt'),
  },
});
/** Routed by hand (no shardBy): receipts start on `hot`, old ones are moved to `archive` with `em.move()`. */
export class Receipt extends ReceiptSchema.class {}
ReceiptSchema.setClass(Receipt);

export const ReceiptLineSchema = defineEntity({
  name: 'ReceiptLine',
  properties: {
    id: p.integer().primary().autoincrement(false),
    text: p.string(),
    receipt: () => p.manyToOne(Receipt),
  },
});
export class ReceiptLine extends ReceiptLineSchema.class {}
ReceiptLineSchema.setClass(ReceiptLine);

export const movingEntities = [Country, Label, Customer, Purchase, PurchaseItem, Note];
export const receiptEntities = [Receipt, ReceiptLine];
