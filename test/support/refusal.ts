import { ShardingError } from 'mikro-orm-sharding';
import { expect } from 'vitest';

/** The `ShardingError` that `run` throws or rejects with; fails the test when it ends otherwise. */
export async function refusal(run: () => unknown): Promise<ShardingError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ShardingError);
    return error as ShardingError;
  }
  throw new Error('expected a ShardingError');
}
