import type { ShardId } from '../choosers.ts';
import type { BroadcastChange } from './changes.ts';

/** What a fork waiting for the broadcast rows is told when they will not come: its flush stops, writing nothing. */
export const NOT_REPLAYED = new Error('mikro-orm-sharding: broadcast rows were not replayed; this shard wrote nothing');

/**
 * Orders the forks of one flush so that broadcast rows are on every shard before anything else is written. Every
 * fork arrives at MikroORM's `onFlush`, when its change sets are known and nothing is written: a fork whose flush
 * writes broadcast entities (a home) goes on at once; the others wait until every home has written and its broadcast
 * rows have been replayed on every other shard, so that their rows may reference them. With no home, nobody waits.
 */
export class BroadcastMeeting {
  readonly #expected: number;
  readonly #replay: (changes: readonly BroadcastChange[]) => Promise<void>;
  readonly #arrived = new Set<ShardId>();
  readonly #homes = new Set<ShardId>();
  readonly #written = new Set<ShardId>();
  readonly #changes: BroadcastChange[] = [];
  readonly #replayed: Promise<void>;
  #release!: () => void;
  #stop!: (reason: unknown) => void;
  #started = false;
  #replaying: Promise<void> | undefined;
  /** Why the broadcast rows could not be replayed (the flush's error), once known. */
  error: unknown;

  constructor(expected: number, replay: (changes: readonly BroadcastChange[]) => Promise<void>) {
    this.#expected = expected;
    this.#replay = replay;
    this.#replayed = new Promise<void>((resolve, reject) => {
      this.#release = resolve;
      this.#stop = reject;
    });
    // Rejected when no fork waits on it.
    this.#replayed.catch(() => undefined);
  }

  /** A fork at `onFlush` (again: a no-op). Resolves when it may write: at once for a home. */
  arrive(shard: ShardId, home: boolean): Promise<void> | undefined {
    if (!this.#arrived.has(shard)) {
      this.#arrived.add(shard);
      if (home) {
        this.#homes.add(shard);
      }
      this.#settle();
    }
    return this.#homes.has(shard) ? undefined : this.#replayed;
  }

  /** A home's flush wrote its broadcast rows (its `afterFlush`): `changes` are what to replay. */
  written(shard: ShardId, changes: readonly BroadcastChange[]): void {
    this.#written.add(shard);
    this.#changes.push(...changes);
    this.#settle();
  }

  /** A home's flush failed: nothing will be replayed, and the waiting forks stop. */
  failed(shard: ShardId): void {
    if (this.#homes.has(shard) && !this.#written.has(shard)) {
      this.#started = true;
      this.#stop(NOT_REPLAYED);
    }
  }

  #settle(): void {
    if (this.#started || this.#arrived.size < this.#expected || [...this.#homes].some(home => !this.#written.has(home))) {
      return;
    }
    this.#started = true;
    if (this.#changes.length === 0) {
      this.#release();
      return;
    }
    this.#replaying = this.#replay(this.#changes).then(this.#release, (error: unknown) => {
      this.error = error;
      this.#stop(NOT_REPLAYED);
    });
  }

  /** Resolves once the broadcast rows are replayed, or will not be (see {@link error}): when every fork's flush is over. */
  async replayed(): Promise<void> {
    await this.#replaying;
  }
}
