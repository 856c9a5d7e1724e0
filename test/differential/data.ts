import type { EntityManager } from '@mikro-orm/core';
import fc from 'fast-check';
import { Leaf, Rec } from './model.ts';
import type { Pair } from './fleets.ts';

/**
 * Small pools of values, so that rows tie on every column, with NULLs, boundaries (int2/int4 limits, a bigint
 * beyond 2^53), decimals whose text order differs from their numeric order, and strings in several scripts.
 */
export const POOLS = {
  int: [null, -3, 0, 1, 2, 7, 100_000, 2_147_483_647],
  small: [-2, 0, 3, 32_767],
  big: [null, -1n, 0n, 5n, 9_007_199_254_740_992n, 9_007_199_254_740_993n, 123_456_789_012_345_678n],
  dec: [null, '-1.50', '0.00', '0.10', '2.00', '10.25', '99999999.99'],
  dbl: [null, -1.5, 0, 0.25, 2, 1e10],
  str: [null, '', 'a', 'A', 'Z', 'é', 'ß', 'zz', '中文', '😀', 'a b', "O'Neil", '100', '9', 'a%'],
  flag: [null, true, false],
  day: [null, '1999-12-31', '2000-01-01', '2024-02-29'],
  at: [null, '1970-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', '2020-06-15T12:34:56.789Z'],
  weight: [-1, 0, 5, 7, 9],
} as const;

export interface RecRow {
  readonly id: number;
  readonly int: number | null;
  readonly small: number;
  readonly big: bigint | null;
  readonly dec: string | null;
  readonly dbl: number | null;
  readonly str: string | null;
  readonly txt: string | null;
  readonly flag: boolean | null;
  readonly day: string | null;
  readonly at: string | null;
  readonly leaves: readonly { readonly id: number; readonly weight: number; readonly label: string | null }[];
}

const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);

const leaf = fc.record({ weight: pick(POOLS.weight), label: pick(POOLS.str) });

/** Up to 24 records with unique ids, each with up to three leaves. */
export const dataset: fc.Arbitrary<RecRow[]> = fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 24 }).chain(ids =>
  fc.tuple(
    ...ids.map(id =>
      fc
        .record({
          int: pick(POOLS.int),
          small: pick(POOLS.small),
          big: pick(POOLS.big),
          dec: pick(POOLS.dec),
          dbl: pick(POOLS.dbl),
          str: pick(POOLS.str),
          txt: pick(POOLS.str),
          flag: pick(POOLS.flag),
          day: pick(POOLS.day),
          at: pick(POOLS.at),
          leaves: fc.array(leaf, { maxLength: 3 }),
        })
        .map(row => ({ ...row, id, leaves: row.leaves.map((item, i) => ({ ...item, id: id * 10 + i })) })),
    ),
  ),
);

/** Replaces every row of both sides: the plain database gets them all, each shard its own (leaves with their record). */
export async function load(pair: Pair, rows: readonly RecRow[]): Promise<void> {
  const recs = rows.map(({ leaves: _, at, ...rest }) => ({ ...rest, at: at === null ? null : new Date(at) }));
  const leaves = rows.flatMap(row => row.leaves.map(item => ({ ...item, rec: row.id })));
  const plain = pair.plain.em.fork();
  await plain.nativeDelete(Leaf, {});
  await plain.nativeDelete(Rec, {});
  await insert(plain, recs, leaves);
  await Promise.all(
    pair.sharded.shardIds.map(async shard => {
      const em = pair.sharded.shard(shard).em.fork();
      await em.nativeDelete(Leaf, {});
      await em.nativeDelete(Rec, {});
      await insert(
        em,
        recs.filter(rec => pair.shardOfRec(rec.id) === shard),
        leaves.filter(item => pair.shardOfRec(item.rec) === shard),
      );
    }),
  );
}

async function insert(em: EntityManager, recs: object[], leaves: object[]): Promise<void> {
  if (recs.length > 0) {
    await em.insertMany(Rec, recs as never);
  }
  if (leaves.length > 0) {
    await em.insertMany(Leaf, leaves as never);
  }
}
