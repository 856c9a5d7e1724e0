import { defineEntity, p } from '@mikro-orm/core';

/**
 * The differential suite's model: a record with a column of every common type, each nullable but one, and a
 * to-many relation to leaves that live on their record's shard.
 */
export const RecSchema = defineEntity({
  name: 'Rec',
  properties: {
    id: p.integer().primary().autoincrement(false),
    int: p.integer().nullable(),
    small: p.smallint(),
    big: p.bigint().nullable(),
    dec: p.decimal().precision(10).scale(2).nullable(),
    dbl: p.double().nullable(),
    str: p.string().nullable(),
    txt: p.text().nullable(),
    flag: p.boolean().nullable(),
    day: p.date().nullable(),
    at: p.datetime().nullable(),
    leaves: () => p.oneToMany(Leaf).mappedBy('rec'),
  },
});
export class Rec extends RecSchema.class {}
RecSchema.setClass(Rec);

export const LeafSchema = defineEntity({
  name: 'Leaf',
  properties: {
    id: p.integer().primary().autoincrement(false),
    weight: p.integer(),
    label: p.string().nullable(),
    rec: () => p.manyToOne(Rec),
  },
});
export class Leaf extends LeafSchema.class {}
LeafSchema.setClass(Leaf);

export const entities = [Rec, Leaf];

/** Where a record lives (its leaves go with it). */
export const SHARDS = 4;
export const shardOfRec = (id: number): string => `s${id % SHARDS}`;

/** Scalar properties of Rec, by the kind of value they hold. */
export const REC_COLUMNS = ['int', 'small', 'big', 'dec', 'dbl', 'str', 'txt', 'flag', 'day', 'at'] as const;
export type RecColumn = (typeof REC_COLUMNS)[number];
