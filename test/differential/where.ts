import fc from 'fast-check';
import { POOLS } from './data.ts';
import type { RecColumn } from './model.ts';

const nonNull = <T>(values: readonly T[]) => values.filter(value => value !== null) as Exclude<T, null>[];
const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);

/**
 * Values a condition compares a column with: the data's own (so conditions hit), plus numbers that do not fit an
 * integer column (2.5, 3000000000), which PostgreSQL must not be asked to bind as integers.
 */
const VALUES: Record<RecColumn | 'weight' | 'label' | 'id', fc.Arbitrary<unknown>> = {
  // Record ids (the shard key of shardBy fleets): the data's, around the range boundaries, and oddities.
  id: fc.oneof(fc.integer({ min: 0, max: 100 }), pick([19, 20, 44, 45, 69, 70, 2.5, -1, '7', 1000])),
  int: pick([...nonNull(POOLS.int), 2.5, -0.5, 3_000_000_000, -3_000_000_000]),
  small: pick([...POOLS.small, 40_000, 1.5, -40_000]),
  big: pick(nonNull(POOLS.big)),
  dec: pick([...nonNull(POOLS.dec), 2, 0.1, 10.25]),
  dbl: pick([...nonNull(POOLS.dbl), 3]),
  str: pick(nonNull(POOLS.str)),
  txt: pick(nonNull(POOLS.str)),
  flag: pick([true, false]),
  day: pick(nonNull(POOLS.day)),
  at: pick(nonNull(POOLS.at)).map(iso => new Date(iso)),
  weight: pick([...POOLS.weight, 6.5, 3_000_000_000]),
  label: pick(nonNull(POOLS.str)),
};
const NULLABLE = new Set(['int', 'big', 'dec', 'dbl', 'str', 'txt', 'flag', 'day', 'at', 'label']);
const TEXT = new Set(['str', 'txt', 'label']);
const UNORDERED = new Set(['flag']);
const LIKE = pick(['a%', '%a%', '_', '%', 'é%', '中%', '%9', 'A_', '%\u00df']);

/** One condition on one column: equality (NULL included), comparisons, lists, patterns. */
export function columnCondition(column: RecColumn | 'weight' | 'label' | 'id'): fc.Arbitrary<object> {
  const value = VALUES[column];
  const options: fc.Arbitrary<object>[] = [
    value.map(v => ({ [column]: v })),
    value.map(v => ({ [column]: { $ne: v } })),
    fc.array(value, { minLength: 1, maxLength: 4 }).map(vs => ({ [column]: { $in: vs } })),
    fc.array(value, { minLength: 1, maxLength: 3 }).map(vs => ({ [column]: { $nin: vs } })),
  ];
  if (NULLABLE.has(column)) {
    options.push(fc.constantFrom({ [column]: null }, { [column]: { $ne: null } }));
  }
  if (!UNORDERED.has(column)) {
    options.push(fc.tuple(pick(['$gt', '$gte', '$lt', '$lte']), value).map(([op, v]) => ({ [column]: { [op]: v } })));
    options.push(fc.tuple(value, value).map(([low, high]) => ({ [column]: { $gte: low, $lt: high } })));
  }
  if (TEXT.has(column)) {
    options.push(LIKE.map(pattern => ({ [column]: { $like: pattern } })));
  }
  return fc.oneof(...options);
}

const REC_WHERE_COLUMNS = ['int', 'small', 'big', 'dec', 'dbl', 'str', 'txt', 'flag', 'day', 'at'] as const;

const leafAtom = fc.oneof(columnCondition('weight'), columnCondition('label'));
const recAtom = fc.oneof(
  { arbitrary: fc.constantFrom(...REC_WHERE_COLUMNS).chain(columnCondition), weight: 4 },
  { arbitrary: columnCondition('id'), weight: 1 },
);
/** A leaf's record by id: `{ rec: 5 }`, `{ rec: { $in: [...] } }`, `{ rec: { id: ... } }`. */
const leafRec = fc.oneof(
  columnCondition('id').map(condition => ({ rec: (condition as { id: unknown }).id })),
  columnCondition('id').map(rec => ({ rec })),
);

/** Conditions on a record: columns, its leaves (joined, or `$some`/`$none`), combined with `$and`/`$or`/`$not`. */
export const recWhere: fc.Arbitrary<object> = fc.letrec<{ cond: object }>(tie => ({
  cond: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    recAtom,
    recAtom,
    leafAtom.map(leaves => ({ leaves })),
    leafAtom.map(cond => ({ leaves: { $some: cond } })),
    leafAtom.map(cond => ({ leaves: { $none: cond } })),
    fc.array(tie('cond'), { minLength: 1, maxLength: 3 }).map(list => ({ $and: list })),
    fc.array(tie('cond'), { minLength: 1, maxLength: 3 }).map(list => ({ $or: list })),
    tie('cond').map(inner => ({ $not: inner })),
    fc.tuple(recAtom, tie('cond')).map(([a, b]) => ({ ...b, ...a })),
  ),
})).cond;

/**
 * Conditions on a leaf: its columns, its record (a to-one join), and through the record to its siblings. `$or`
 * branches hold only the leaf's own columns: MikroORM 7.2.1 itself answers `$or` over a record condition wrongly
 * once a limit pages through a to-many join (the branch's condition leaks into the outer query's join).
 */
export const leafWhere: fc.Arbitrary<object> = fc.letrec<{ cond: object }>(tie => ({
  cond: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    leafAtom,
    leafAtom,
    leafRec,
    recAtom.map(rec => ({ rec })),
    columnCondition('weight').map(leaves => ({ rec: { leaves } })),
    fc.array(leafAtom, { minLength: 1, maxLength: 3 }).map(list => ({ $or: list })),
    fc.array(tie('cond'), { minLength: 1, maxLength: 3 }).map(list => ({ $and: list })),
  ),
})).cond;
