// The shared sharding workload (../shared/bench-workload.md): the Item entity, murmurhash routing, the seeded
// data every system receives, and the ground truth every answer is checked against.
import { defineEntity, p, type EntityClass, type EntitySchema } from '@mikro-orm/core';
import murmurhash from 'murmurhash';

/** One row of the workload, as written by every system. */
export interface Row {
  id: number;
  name: string;
  score: number;
}

/** What the systems return from F queries: only these fields are read. */
export interface ItemLike {
  id: number;
  name: string;
  score: number;
}

export const BATCH = 1000;
export const PAGE = 20;
export const LOOKUPS_PER_FORK = 100;
export const SCORE_RANGE = 1_000_000;

/**
 * A fresh `Item` class with its own schema. Each system (each fleet of MikroORM instances) gets its own class so
 * that no ORM decorates another system's prototype (stack notes: the last ORM initialised wins).
 */
export interface ItemModel {
  Item: EntityClass<ItemLike>;
  ItemSchema: EntitySchema<ItemLike>;
}

export function makeItem(): ItemModel {
  const ItemSchema = defineEntity({
    name: 'Item',
    tableName: 'item',
    properties: {
      id: p.integer().primary().autoincrement(false),
      name: p.string().length(32),
      score: p.integer().index(),
    },
  });
  class Item extends ItemSchema.class {}
  ItemSchema.setClass(Item);
  return { Item, ItemSchema: ItemSchema as unknown as EntitySchema<ItemLike> };
}

const utf8 = new TextEncoder();

/**
 * `murmurhash3_32(String(id), seed 0) % S`, the workload's routing. npm murmurhash makes a new `TextEncoder` for
 * every string key (measured: ~5 us a call, more than a SQLite lookup's routing); handing it the same UTF-8 bytes
 * from one encoder gives the same hash at a fraction of the cost, for every routed system alike.
 */
export function shardIndex(id: number, shards: number): number {
  return murmurhash.v3(utf8.encode(String(id)), 0) % shards;
}
export function shardName(index: number): string {
  return `s${index}`;
}
export function shardNames(shards: number): string[] {
  return Array.from({ length: shards }, (_, i) => shardName(i));
}

/** mulberry32: a small seeded PRNG; the same seed gives the same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function itemName(id: number): string {
  return `name-${String(id).padStart(8, '0')}`;
}

export interface Sizes {
  rows: number;
  points: number;
  fanouts: number;
  /** Transactions of phase T, and of phase X per mode. */
  txs?: number;
}

/** Everything random in one run, drawn once so every system gets exactly the same work. */
export interface Workload extends Sizes {
  seed: number;
  data: Row[];
  pointIds: number[];
  fanoutXs: number[];
  countXs: number[];
}

export function makeWorkload(sizes: Sizes, seed: number): Workload {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const data: Row[] = [];
  for (let id = 0; id < sizes.rows; id++) {
    data.push({ id, name: itemName(id), score: int(SCORE_RANGE) });
  }
  const pointIds = Array.from({ length: sizes.points }, () => int(sizes.rows));
  const fanoutXs = Array.from({ length: sizes.fanouts }, () => int(SCORE_RANGE));
  const countXs = Array.from({ length: sizes.fanouts }, () => int(SCORE_RANGE));
  return { ...sizes, seed, data, pointIds, fanoutXs, countXs };
}

/**
 * The rows each transaction of phase T or X changes: `span` ids on `span` distinct shards of `shards`, or, with
 * `oneShard`, `span` distinct ids on one shard (drawn at random). `salt` draws different ids for different phases.
 */
export function transactionIds(work: Workload, shards: number, span: number, oneShard: boolean, salt: number): number[][] {
  const rnd = prng(work.seed ^ salt);
  const int = (n: number) => Math.floor(rnd() * n);
  return Array.from({ length: work.txs ?? 0 }, () => {
    const first = int(work.rows);
    const ids = [first];
    const shardsTaken = new Set([shardIndex(first, shards)]);
    for (let tries = 0; ids.length < span && tries < 100_000; tries++) {
      const id = int(work.rows);
      const shard = shardIndex(id, shards);
      if (oneShard ? shard === shardIndex(first, shards) && !ids.includes(id) : !shardsTaken.has(shard)) {
        ids.push(id);
        shardsTaken.add(shard);
      }
    }
    return ids;
  });
}

/** `count` X values drawn so that `score >= X` holds at least `need` rows (a deep page that is really there). */
export function deepXs(work: Workload, truth: Truth, need: number, count: number): number[] {
  const rnd = prng(work.seed ^ 0x5eed);
  const max = truth.scoreAt(Math.min(need, work.rows) - 1);
  return Array.from({ length: count }, () => Math.floor(rnd() * (max + 1)));
}

/** The right answers, computed in memory from the data. */
export class Truth {
  readonly #desc: number[];
  readonly #data: Row[];

  constructor(data: Row[]) {
    this.#data = data;
    this.#desc = data.map(r => r.score).sort((a, b) => b - a);
  }

  /** The score at rank `i` (0 = highest). */
  scoreAt(i: number): number {
    return this.#desc[i] ?? 0;
  }

  /** How many rows have `score >= x`. */
  count(x: number): number {
    let lo = 0;
    let hi = this.#desc.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#desc[mid]! >= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The scores of `score >= x order by score desc offset .. limit ..`: what every correct answer must show. */
  page(x: number, offset: number, limit: number): number[] {
    return this.#desc.slice(offset, Math.min(offset + limit, this.count(x)));
  }

  /**
   * Throws unless `got` is a correct answer: the expected scores in order, distinct ids, and each row exactly the
   * row written (ties at the page boundary may pick any of the tied rows, so ids are checked, not compared).
   */
  check(what: string, got: readonly ItemLike[], x: number, offset: number, limit: number): void {
    const want = this.page(x, offset, limit);
    const fail = (why: string) => {
      throw new Error(`${what}: wrong answer for score >= ${x} offset ${offset} limit ${limit}: ${why}`);
    };
    if (got.length !== want.length) fail(`${got.length} rows, expected ${want.length}`);
    const seen = new Set<number>();
    got.forEach((item, i) => {
      const row = this.#data[item.id];
      if (!row || row.score !== item.score || row.name !== item.name) fail(`row ${JSON.stringify(item)} was never written`);
      if (item.score !== want[i]) fail(`rank ${offset + i} has score ${item.score}, expected ${want[i]}`);
      if (seen.has(item.id)) fail(`id ${item.id} appears twice`);
      seen.add(item.id);
    });
  }
}

/** FNV-1a over a sequence of numbers: the answers checksum (over scores, which ties cannot change). */
export class Checksum {
  #h = 0x811c9dc5;
  add(n: number): void {
    let v = n >>> 0;
    for (let i = 0; i < 4; i++) {
      this.#h ^= v & 0xff;
      this.#h = Math.imul(this.#h, 0x01000193) >>> 0;
      v >>>= 8;
    }
  }
  addAll(ns: Iterable<number>): void {
    for (const n of ns) this.add(n);
  }
  hex(): string {
    return this.#h.toString(16).padStart(8, '0');
  }
}
