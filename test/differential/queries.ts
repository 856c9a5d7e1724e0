import fc from 'fast-check';
import { REC_COLUMNS } from './model.ts';
import { leafWhere, recWhere } from './where.ts';

/** One random query, and how its answer may be compared with one database's. */
export interface Query {
  readonly entity: 'Rec' | 'Leaf';
  readonly op: 'find' | 'findAndCount' | 'count' | 'findOne';
  readonly where: object;
  readonly options: Record<string, unknown>;
  /**
   * `exact`: the order is total (it ends with the primary key), so ids, values and order must match. `keys`: the
   * order leaves ties, so the rows must match as a set and their order keys in sequence. `set`: no order at all.
   */
  readonly compare: 'exact' | 'keys' | 'set';
  /** Whether populated children come in a given order (else they are compared by id). */
  readonly childOrder: boolean;
  /** The refusal this query must meet, if it is one the library documents. */
  readonly refusal?: 'UNMERGEABLE_QUERY';
}

const DIRECTIONS = ['asc', 'desc', 'asc nulls first', 'asc nulls last', 'desc nulls first', 'desc nulls last', 'ASC', 1, -1] as const;
const direction = fc.constantFrom(...DIRECTIONS);

interface Order {
  readonly orderBy: object[];
  readonly total: boolean;
  readonly rootKeys: boolean;
  readonly refusal?: 'UNMERGEABLE_QUERY';
}

/** 0-3 keys, usually ending with the primary key; rarely through the to-many collection (refused). */
function order(keys: readonly (string | object)[], throughCollection?: object): fc.Arbitrary<Order> {
  const key = fc.tuple(fc.constantFrom(...keys), direction).map(([name, dir]) => (typeof name === 'string' ? { [name]: dir } : (mapLeaf(name, dir) as object)));
  return fc
    .record({
      keys: fc.array(key, { maxLength: 3 }),
      tie: fc.integer({ min: 0, max: 99 }),
      through: fc.integer({ min: 0, max: 99 }),
      tieDirection: fc.constantFrom('asc', 'desc'),
    })
    .map(({ keys: chosen, tie, through, tieDirection }) => {
      const orderBy: object[] = [...chosen];
      let refusal: 'UNMERGEABLE_QUERY' | undefined;
      if (throughCollection && through < 5) {
        orderBy.unshift(throughCollection);
        refusal = 'UNMERGEABLE_QUERY';
      }
      const total = tie < 85;
      if (total) {
        orderBy.push({ id: tieDirection });
      }
      const rootKeys = orderBy.every(entry => Object.values(entry).every(value => typeof value !== 'object'));
      return { orderBy, total, rootKeys, refusal };
    });
}

function mapLeaf(path: object, dir: unknown): unknown {
  const [key, value] = Object.entries(path)[0]!;
  return { [key]: typeof value === 'object' && value !== null ? mapLeaf(value, dir) : dir };
}

type Partial = { fields?: string[]; exclude?: string[] };

const subset = (names: readonly string[]) => fc.subarray([...names], { minLength: 1, maxLength: 3 });

/** Mostly whole numbers; sometimes what a query string or a bug hands over (strings, negatives, fractions, NaN). */
const page = fc.record({
  limit: fc.option(fc.oneof({ arbitrary: fc.integer({ min: 0, max: 8 }), weight: 8 }, { arbitrary: fc.constantFrom('3', -1, 1.5, Number.NaN), weight: 1 }), {
    nil: undefined,
    freq: 2,
  }),
  offset: fc.option(fc.oneof({ arbitrary: fc.integer({ min: 0, max: 10 }), weight: 8 }, { arbitrary: fc.constantFrom('2', -1, 0.5, Number.NaN), weight: 1 }), {
    nil: undefined,
    freq: 2,
  }),
});

const op = fc.constantFrom('find', 'find', 'find', 'findAndCount', 'count', 'count', 'findOne') as fc.Arbitrary<Query['op']>;

function query(
  entity: Query['entity'],
  where: fc.Arbitrary<object>,
  ordering: fc.Arbitrary<Order>,
  columns: readonly string[],
  nestedFields: readonly string[],
  populate: string,
  childOrder?: object,
): fc.Arbitrary<Query> {
  return fc
    .record({
      op,
      where: fc.oneof({ arbitrary: fc.constant({}), weight: 1 }, { arbitrary: where, weight: 4 }),
      order: ordering,
      page,
      partial: fc.oneof(
        { arbitrary: fc.constant<Partial>({}), weight: 6 },
        { arbitrary: subset(columns).map((fields): Partial => ({ fields })), weight: 1 },
        { arbitrary: subset([...columns, ...nestedFields]).map((fields): Partial => ({ fields })), weight: 1 },
        { arbitrary: subset(columns).map((exclude): Partial => ({ exclude })), weight: 1 },
      ),
      populate: fc.oneof(
        { arbitrary: fc.constant({}), weight: 5 },
        {
          arbitrary: fc.record({
            populate: fc.constant([populate]),
            populateWhere: fc.constantFrom(undefined, 'infer', 'all'),
            populateOrderBy: childOrder ? fc.constantFrom(undefined, childOrder) : fc.constant(undefined),
          }),
          weight: 2,
        },
      ),
    })
    .map(({ op, where, order, page, partial, populate }) => {
      const options: Record<string, unknown> = op === 'count' ? {} : { ...partial, ...populate };
      if (op !== 'count' && order.orderBy.length > 0) {
        options.orderBy = order.orderBy;
      }
      if (order.total && (op === 'find' || op === 'findAndCount')) {
        Object.assign(options, page);
      }
      dropUndefined(options);
      const compare: Query['compare'] =
        op === 'count' || order.total ? 'exact' : order.orderBy.length > 0 && order.rootKeys && !partial.fields && !partial.exclude ? 'keys' : 'set';
      const refusal = op !== 'count' ? order.refusal : undefined;
      const childOrdered = (populate as { populateOrderBy?: unknown }).populateOrderBy !== undefined;
      return { entity, op: op === 'findOne' && !order.total ? 'find' : op, where, options, compare, childOrder: childOrdered, refusal } satisfies Query;
    });
}

function dropUndefined(options: Record<string, unknown>): void {
  for (const key of Object.keys(options)) {
    if (options[key] === undefined) {
      delete options[key];
    }
  }
}

const recQuery = query(
  'Rec',
  recWhere,
  order([...REC_COLUMNS, 'id'], { leaves: { weight: 'desc' } }),
  REC_COLUMNS,
  ['leaves.weight', 'leaves.label'],
  'leaves',
  { leaves: { weight: 'asc', id: 'asc' } },
);
const leafQuery = query(
  'Leaf',
  leafWhere,
  order(['weight', 'label', { rec: { str: 1 } }, { rec: { int: 1 } }]),
  ['weight', 'label', 'rec'],
  ['rec.str', 'rec.int'],
  'rec',
);

/** Mostly queries on records (all column types, the to-many relation), some on leaves (a to-one relation). */
export const queries: fc.Arbitrary<Query[]> = fc.array(fc.oneof({ arbitrary: recQuery, weight: 3 }, { arbitrary: leafQuery, weight: 1 }), {
  minLength: 1,
  maxLength: 10,
});
