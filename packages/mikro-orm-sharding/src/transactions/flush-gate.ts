import type { EntityManager, EventSubscriber, FlushEventArgs, TransactionEventArgs, UnitOfWork } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';

/**
 * What a sharded transaction decides for one shard's fork while MikroORM flushes it. MikroORM computes the change
 * sets and fires `onFlush` before it opens a transaction of its own, so that is where a shard's transaction can
 * begin lazily, only when the flush writes something.
 */
export interface FlushGate {
  /** Called at `onFlush`: MikroORM knows whether this flush writes (its change sets are in `uow`), and has written nothing yet. */
  enter(dirty: boolean, uow: UnitOfWork): Promise<void> | undefined;
  /** Called at `afterFlush`: everything is written (in the shard's transaction), the change sets are still there. */
  after?(uow: UnitOfWork): void;
  /**
   * Called when MikroORM is about to open its own (implicit) transaction for the flush: the gate did not begin the
   * shard's transaction, so writing now would commit outside it. Throw to stop the flush.
   */
  implicitStart(): void;
}

const gates = new WeakMap<EntityManager, FlushGate>();

/** Forks whose shard has prepared its part of a two-phase commit: what they flush now would commit on its own. */
const sealed = new WeakSet<EntityManager>();

const subscriber: EventSubscriber = {
  onFlush({ em, uow }: FlushEventArgs): Promise<void> | undefined {
    if (sealed.has(em) && hasChanges(uow)) {
      throw ShardingError.transactionClosed('prepared for two-phase commit (its shard has voted)');
    }
    return gates.get(em)?.enter(hasChanges(uow), uow);
  },
  afterFlush({ em, uow }: FlushEventArgs): void {
    gates.get(em)?.after?.(uow);
  },
  beforeTransactionStart({ em, transaction }: TransactionEventArgs): void {
    // A savepoint (`transaction` set) or a begin the gate itself asked for is none of its business.
    if (transaction === undefined && !beginning.has(em)) {
      gates.get(em)?.implicitStart();
    }
  },
};

/** Entity managers whose transaction the sharded transaction is beginning right now (see {@link beginOn}). */
const beginning = new WeakSet<EntityManager>();

/** Whether a flush has something to write (the test MikroORM makes before it opens a transaction). */
function hasChanges(uow: UnitOfWork): boolean {
  return uow.getChangeSets().length > 0 || uow.getCollectionUpdates().length > 0 || uow.getExtraUpdates().size > 0;
}

/** Flushes one shard's fork through a gate. */
export async function flushThrough(fork: EntityManager, gate: FlushGate): Promise<void> {
  // On the fork's own event manager (a transaction's forks clone theirs); a no-op once registered.
  fork.getEventManager().registerSubscriber(subscriber);
  gates.set(fork, gate);
  try {
    await fork.flush();
  } finally {
    gates.delete(fork);
  }
}

/** From PREPARE TRANSACTION until COMMIT/ROLLBACK PREPARED, a fork refuses to flush anything. */
export function seal(fork: EntityManager): void {
  fork.getEventManager().registerSubscriber(subscriber);
  sealed.add(fork);
}

export function unseal(fork: EntityManager): void {
  sealed.delete(fork);
}

/** Begins a transaction (or a savepoint) on a fork, telling the gate that this start is the sharded transaction's own. */
export async function beginOn(fork: EntityManager, options: Parameters<EntityManager['begin']>[0]): Promise<void> {
  beginning.add(fork);
  try {
    await fork.begin(options);
  } finally {
    beginning.delete(fork);
  }
}

/**
 * Holds every fork of one flush at `onFlush` until all have arrived (or failed before it), so that the transaction
 * can see every shard the flush would write before any of them writes: a `single` transaction refuses a second
 * shard, and any transaction refuses a shard whose circuit breaker is open. `decide` runs once, when the last fork
 * arrives, with the shards that write; what it throws, every waiting fork throws (one error object).
 */
export class Rendezvous {
  readonly #arrived = new Set<ShardId>();
  readonly #dirty = new Set<ShardId>();
  readonly #expected: number;
  readonly #decided: Promise<void>;
  #release!: (dirty: ReadonlySet<ShardId>) => void;

  constructor(expected: number, decide: (writers: ReadonlySet<ShardId>) => void) {
    this.#expected = expected;
    this.#decided = new Promise<ReadonlySet<ShardId>>(resolve => (this.#release = resolve)).then(decide);
    // When every fork failed before onFlush, nobody waits for the decision: its refusal is no unhandled rejection.
    this.#decided.catch(() => undefined);
  }

  /** Records one fork at `onFlush`; resolves once every fork has arrived and the writers were accepted. */
  arrive(shard: ShardId, dirty: boolean): Promise<void> {
    this.leave(shard, dirty);
    return this.#decided;
  }

  /** Records one fork (again: a no-op); a fork that ends without reaching `onFlush` leaves as not writing. */
  leave(shard: ShardId, dirty = false): void {
    if (!this.#arrived.has(shard)) {
      this.#arrived.add(shard);
      if (dirty) {
        this.#dirty.add(shard);
      }
      if (this.#arrived.size === this.#expected) {
        this.#release(this.#dirty);
      }
    }
  }
}
