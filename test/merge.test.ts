import { describe, expect, it } from 'vitest';
import { comparatorOf, compareValues, concatPage, mergeSorted, sumCounts, type SortKey } from 'mikro-orm-sharding/merge';

type Row = { id: number; score: number | null; name?: string };

const byScoreDesc: SortKey<Row>[] = [
  { read: row => row.score, direction: -1, nulls: 'last', kind: 'number' },
  { read: row => row.id, direction: 1, nulls: 'last', kind: 'number' },
];

/** Sorting everything in one list is the ground truth a k-way merge must reproduce. */
function sortedPage(lists: Row[][], keys: SortKey<Row>[], offset: number, limit: number): number[] {
  return lists
    .flat()
    .sort(comparatorOf(keys))
    .slice(offset, offset + limit)
    .map(row => row.id);
}

describe('mergeSorted', () => {
  it('merges pre-sorted shard pages into the global order, then skips and cuts', () => {
    const compare = comparatorOf(byScoreDesc);
    const lists: Row[][] = [
      [
        { id: 1, score: 90 },
        { id: 4, score: 50 },
        { id: 7, score: 10 },
      ],
      [
        { id: 2, score: 80 },
        { id: 5, score: 50 },
        { id: 8, score: null },
      ],
      [
        { id: 3, score: 95 },
        { id: 6, score: 20 },
      ],
    ].map(list => list.sort(compare));
    expect(mergeSorted(lists, compare).map(m => m.row.id)).toEqual(sortedPage(lists, byScoreDesc, 0, 99));
    expect(mergeSorted(lists, compare, 2, 3).map(m => m.row.id)).toEqual([2, 4, 5]);
    expect(mergeSorted(lists, compare, 2, 3).map(m => m.source)).toEqual([1, 0, 1]);
  });

  it('agrees with a full sort on random shards, pages and ties', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const compare = comparatorOf(byScoreDesc);
    for (let round = 0; round < 200; round++) {
      let id = 0;
      const lists = Array.from({ length: 1 + Math.floor(random() * 6) }, () =>
        Array.from({ length: Math.floor(random() * 12) }, () => ({ id: id++, score: random() < 0.1 ? null : Math.floor(random() * 8) })).sort(compare),
      );
      const offset = Math.floor(random() * 10);
      const limit = Math.floor(random() * 10);
      expect(mergeSorted(lists, compare, offset, limit).map(m => m.row.id)).toEqual(sortedPage(lists, byScoreDesc, offset, limit));
    }
  });

  it('keeps shard order on ties so pages are stable', () => {
    const compare = comparatorOf<Row>([{ read: row => row.score, direction: 1, nulls: 'first', kind: 'number' }]);
    const merged = mergeSorted([[{ id: 10, score: 1 }], [{ id: 20, score: 1 }], [{ id: 30, score: 1 }]], compare);
    expect(merged.map(m => m.source)).toEqual([0, 1, 2]);
  });

  it('returns nothing for empty shards or a zero limit', () => {
    const compare = comparatorOf(byScoreDesc);
    expect(mergeSorted([[], []], compare)).toEqual([]);
    expect(mergeSorted([[{ id: 1, score: 1 }]], compare, 0, 0)).toEqual([]);
  });
});

describe('concatPage', () => {
  it('concatenates shards in chooser order and pages across their boundaries', () => {
    const lists = [[1, 2], [3], [], [4, 5, 6]];
    expect(concatPage(lists).map(m => m.row)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(concatPage(lists, 1, 3).map(m => [m.source, m.row])).toEqual([
      [0, 2],
      [1, 3],
      [3, 4],
    ]);
    expect(concatPage(lists, 6, 3)).toEqual([]);
  });
});

describe('compareValues', () => {
  it('reads numbers drivers return as strings (PostgreSQL numeric, bigint) by value, not by text', () => {
    expect(compareValues('10.5', '9.25', 'decimal')).toBeGreaterThan(0);
    expect(compareValues('-10.5', '-9.25', 'decimal')).toBeLessThan(0);
    expect(compareValues('1.50', '1.5', 'decimal')).toBe(0);
    expect(compareValues('9007199254740993', '9007199254740992', 'bigint')).toBeGreaterThan(0);
    expect(compareValues(10.5, '9.25', 'decimal')).toBeGreaterThan(0);
    expect(compareValues('0.0', '-0', 'decimal')).toBe(0);
  });

  it('orders strings by code point, dates by time, booleans false first', () => {
    expect(compareValues('B', 'a', 'string')).toBeLessThan(0);
    expect(compareValues('\u{1F600}', '\uFFFF', 'string')).toBeGreaterThan(0);
    expect(compareValues(new Date('2020-01-02'), new Date('2020-01-01'), 'date')).toBeGreaterThan(0);
    expect(compareValues(false, true, 'boolean')).toBeLessThan(0);
  });

  it('places nulls as the key says, whatever the direction', () => {
    const rows: Row[] = [
      { id: 1, score: null },
      { id: 2, score: 5 },
      { id: 3, score: 1 },
    ];
    const order = (direction: 1 | -1, nulls: 'first' | 'last') =>
      [...rows].sort(comparatorOf<Row>([{ read: r => r.score, direction, nulls, kind: 'number' }])).map(r => r.id);
    expect(order(1, 'first')).toEqual([1, 3, 2]);
    expect(order(1, 'last')).toEqual([3, 2, 1]);
    expect(order(-1, 'first')).toEqual([1, 2, 3]);
    expect(order(-1, 'last')).toEqual([2, 3, 1]);
  });
});

describe('sumCounts', () => {
  it('adds counts as drivers return them', () => {
    expect(sumCounts([3, '4', 5n, null, undefined])).toBe(12);
  });
});
