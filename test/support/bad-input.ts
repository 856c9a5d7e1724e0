import { ShardingError, type ShardedEntityManager, type ShardedMikroORM } from 'mikro-orm-sharding';
import { expect } from 'vitest';
import { allRows } from './fleet.ts';

/** One row of a table-driven bad-input test: a call, and the typed error it must throw. */
export interface BadInputRow {
  readonly name: string;
  readonly run: (em: ShardedEntityManager) => unknown;
  /** A `ShardingError` code, or the class MikroORM throws. */
  readonly error: string | (new (...args: never[]) => Error);
  /** Names the shard, entity or value (and says what to do). */
  readonly message: RegExp;
}

/** What `run` throws or rejects with; fails the test when it ends otherwise. */
export async function captured(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, got none');
}

/** Runs a row on a fresh fork: its typed error, a short message that matches, and no row changed on any shard. */
export async function expectRefused(orm: ShardedMikroORM, { run, error, message }: BadInputRow): Promise<void> {
  const before = await allRows(orm);
  const thrown = await captured(() => run(orm.em.fork()));
  if (typeof error === 'string') {
    expect(thrown).toBeInstanceOf(ShardingError);
    expect((thrown as ShardingError).code).toBe(error);
  } else {
    expect(thrown).toBeInstanceOf(error);
  }
  expect((thrown as Error).message).toMatch(message);
  expect((thrown as Error).message.length).toBeLessThan(600);
  expect(await allRows(orm)).toEqual(before);
}
