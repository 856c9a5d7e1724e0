import type { ShardedMikroORM } from '../ShardedMikroORM.ts';

/**
 * State a strategy keeps for each fleet it routes (a directory's cache, a loaded bucket table): one strategy object
 * may serve several fleets, say a test's and a script's, which must not share what they read.
 */
export class PerFleet<T> {
  readonly #states = new WeakMap<ShardedMikroORM, T>();
  readonly #make: () => T;

  constructor(make: () => T) {
    this.#make = make;
  }

  of(orm: ShardedMikroORM): T {
    let state = this.#states.get(orm);
    if (state === undefined) {
      state = this.#make();
      this.#states.set(orm, state);
    }
    return state;
  }
}
