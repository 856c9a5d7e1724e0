import type { IsolationLevel, LogContext, Transaction } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { settleEach } from '../fleet/settle.ts';
import { recordFailure } from '../errors/shard-failure.ts';
import type { ShardScope } from '../scope.ts';
import { beginOn } from './flush-gate.ts';
import { commitInOrder } from './multi.ts';
import type { TransactionMode } from './settings.ts';
import { checkSingle, rollbackShard, twoTransactions, type Participant } from './single.ts';
import { commitTwoPhase } from './twopc.ts';
import { flushInTransaction } from './transaction-flush.ts';
import { databaseOf } from '../table-suffix/same-database.ts';

/** How one sharded transaction runs on each shard it touches. */
export interface TransactionSettings {
  readonly mode: TransactionMode;
  readonly isolationLevel?: IsolationLevel | `${IsolationLevel}`;
  readonly readOnly?: boolean;
  readonly loggerContext?: LogContext;
  /** What a failure is reported as in `shardFailureOf(error).operation`: `'flush'` for a flush's own transaction. */
  readonly operation: string;
  /** Never committed (`rollbackScope()`): what nests in it runs as outside any transaction. */
  readonly rollbackOnly?: boolean;
}

type State = 'open' | 'committing' | 'committed' | 'rolled back';

/**
 * One sharded entity manager's transaction. It begins on a shard lazily, the first time its entity manager runs
 * something there ({@link ready}), or when a flush writes there; a nested one (`parent`) opens a savepoint in its
 * parent's transaction instead, beginning that one first if needed. Its commit is the mode's: `single` and `multi`
 * commit shard after shard, `twopc` prepares every shard first. The shards' forks are the entity manager's
 * (`scope.forks`): this class holds only what it began.
 */
export class ShardTransaction {
  readonly #scope: ShardScope;
  readonly #settings: TransactionSettings;
  readonly #parent: ShardTransaction | undefined;
  /** The shards begun, in the order they were, with their transaction (or savepoint). */
  readonly #begun = new Map<ShardId, Transaction>();
  /** Shards that share another begun shard's database (table-suffix shards): they run in its transaction. */
  readonly #joined = new Set<ShardId>();
  #beginning: Map<ShardId, Promise<void>> | undefined;
  #state: State = 'open';

  constructor(scope: ShardScope, settings: TransactionSettings, parent?: ShardTransaction) {
    this.#scope = scope;
    this.#settings = settings;
    this.#parent = parent;
  }

  /** The mode; a nested transaction has its outermost one's, unless that one never commits. */
  get mode(): TransactionMode {
    return this.#parent !== undefined && !this.#parent.rollbackOnly ? this.#parent.mode : this.#settings.mode;
  }

  /**
   * Whether it is never committed (`rollbackScope()`): a transaction nested in it may have any mode, and runs in its
   * own, and a flush in it may move rows (they are rolled back with the rest).
   */
  get rollbackOnly(): boolean {
    return this.#settings.rollbackOnly === true;
  }

  /** The mode that decides how its writes commit: none for one that never commits. */
  get commitMode(): TransactionMode | undefined {
    return this.rollbackOnly ? undefined : this.mode;
  }

  /** Whether it can still read and write (not committing, committed or rolled back). */
  get open(): boolean {
    return this.#state === 'open';
  }

  /** Whether it has not ended yet (open or committing). */
  get active(): boolean {
    return this.#state === 'open' || this.#state === 'committing';
  }

  /**
   * Makes sure the transaction has begun on the shard before something runs there: undefined when it has (nothing
   * to wait for), else the beginning. Throws `TRANSACTION_SPANS_SHARDS` for a second shard of a `single` one, and
   * `TRANSACTION_CLOSED` once it is over.
   */
  ready(shard: ShardId): Promise<void> | undefined {
    if (this.#state !== 'open') {
      throw ShardingError.transactionClosed(this.#state);
    }
    if (this.#begun.has(shard)) {
      return undefined;
    }
    return this.#beginning?.get(shard) ?? this.#begin(shard);
  }

  /** Flushes every fork of the entity manager inside the transaction (see {@link flushInTransaction}). */
  async flush(): Promise<void> {
    if (this.#state !== 'open') {
      throw ShardingError.transactionClosed(this.#state);
    }
    return flushInTransaction(this, this.#scope);
  }

  /** What a failure is reported as in `shardFailureOf(error).operation`. */
  get operation(): string {
    return this.#settings.operation;
  }

  /** Whether it has begun on the shard (or the shard joined another's transaction). */
  hasBegun(shard: ShardId): boolean {
    return this.#begun.has(shard);
  }

  /** Its transaction (or savepoint) on the shard, once begun. */
  begunOn(shard: ShardId): Transaction | undefined {
    return this.#begun.get(shard);
  }

  /** Commits on every shard it began, the mode's way; a nested transaction releases its savepoints. */
  async commit(): Promise<void> {
    if (this.#state !== 'open') {
      throw ShardingError.transactionClosed(this.#state);
    }
    if (this.#beginning !== undefined && this.#beginning.size > 0) {
      await this.#settleBeginnings();
    }
    this.#state = 'committing';
    const participants = this.#participants();
    const { operation, loggerContext } = this.#settings;
    try {
      const refusal = this.#parent === undefined && participants.length > 1 ? this.#refusal(participants.map(participant => participant.shard)) : undefined;
      if (refusal !== undefined) {
        // A shard known to be down would fail its commit after others had committed theirs (multi): commit none.
        await Promise.allSettled(participants.map(rollbackShard));
        throw refusal;
      }
      const twoPhase = this.#scope.orm.transactionConfig.twoPhase;
      if (this.#parent === undefined && this.mode === 'twopc' && twoPhase) {
        await commitTwoPhase(this.#scope.orm, twoPhase, operation, participants, loggerContext);
      } else {
        await commitInOrder(operation, participants, loggerContext);
      }
      this.#state = 'committed';
    } catch (error) {
      // Each mode has rolled back whatever it did not commit.
      this.#state = 'rolled back';
      throw error;
    }
  }

  /** Rolls back on every shard it began (a nested one: to its savepoints); a no-op once over. */
  async rollback(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'rolled back') {
      return;
    }
    this.#state = 'rolled back';
    await this.#settleBeginnings();
    const participants = new Map(this.#participants().map(participant => [participant.shard, participant]));
    await settleEach('rollback', [...participants.keys()], shard => rollbackShard(participants.get(shard)!));
  }

  #begin(shard: ShardId): Promise<void> {
    if ((this.#parent === undefined || this.#parent.rollbackOnly) && this.#settings.mode === 'single') {
      checkSingle([...this.#begun.keys(), ...(this.#beginning?.keys() ?? [])], shard, this.#databaseOf);
    }
    const begun = this.#open(shard);
    (this.#beginning ??= new Map()).set(shard, begun);
    return begun;
  }

  async #open(shard: ShardId): Promise<void> {
    // Decided before any await: a shard beginning at the same time on the same database must be seen here.
    const host = this.#sameDatabase(shard);
    try {
      if (host !== undefined) {
        return await this.#join(shard, host);
      }
      // A nested transaction's savepoint lives in its parent's transaction on the shard, begun first if need be.
      const ctx = this.#parent ? await this.#parent.#contextOn(shard) : undefined;
      const fork = this.#scope.fork(shard);
      const { isolationLevel, readOnly, loggerContext } = this.#settings;
      await beginOn(fork, { ctx, isolationLevel, readOnly, loggerContext });
      this.#begun.set(shard, fork.getTransactionContext()!);
    } finally {
      this.#beginning!.delete(shard);
    }
  }

  /** Shards on one database run in one transaction (see {@link #sameDatabase}): `single` counts them as one. */
  readonly #databaseOf = (shard: ShardId): string | undefined => databaseOf(this.#scope.orm.shard(shard).em);

  /**
   * A begun (or beginning) shard on the same database as `shard`. Two transactions there would be two connections
   * writing one database: on SQLite the second waits for a lock the first holds until the whole flush is done.
   */
  #sameDatabase(shard: ShardId): ShardId | undefined {
    const orm = this.#scope.orm;
    const database = databaseOf(orm.shard(shard).em);
    if (database === undefined) {
      return undefined;
    }
    return [...this.#begun.keys(), ...(this.#beginning?.keys() ?? [])].find(other => !this.#joined.has(other) && databaseOf(orm.shard(other).em) === database);
  }

  /** Runs `shard`'s fork in `host`'s transaction (its statements go over `host`'s connection, to the same database). */
  async #join(shard: ShardId, host: ShardId): Promise<void> {
    this.#joined.add(shard);
    await this.#beginning?.get(host);
    const ctx = this.#begun.get(host)!;
    this.#scope.fork(shard).setTransactionContext(ctx);
    this.#begun.set(shard, ctx);
  }

  async #contextOn(shard: ShardId): Promise<Transaction> {
    await this.ready(shard);
    return this.#begun.get(shard)!;
  }

  /**
   * Once every fork of a flush is at `onFlush`, before any writes: a `single` transaction may write one shard, and
   * no transaction writes to a shard whose circuit is open (its refusal, recorded as that shard's, nothing done).
   */
  admit(writers: ReadonlySet<ShardId>): void {
    if (this.mode === 'single') {
      const span = twoTransactions([...this.#begun.keys(), ...writers], this.#databaseOf);
      if (span !== undefined) {
        throw ShardingError.transactionSpansShards(...span);
      }
    }
    const refusal = this.#refusal(writers);
    if (refusal !== undefined) {
      throw refusal;
    }
  }

  /** The refusal of the first of `shards` whose circuit breaker is open, recorded as that shard's failure with nothing done. */
  #refusal(shards: Iterable<ShardId>): unknown {
    const { health } = this.#scope.orm.faults;
    for (const shard of shards) {
      const refused = health.refuseNow(shard);
      if (refused) {
        return recordFailure({ operation: this.#settings.operation, shard, done: [], failed: [{ shard, error: refused }] }, true);
      }
    }
    return undefined;
  }

  async #settleBeginnings(): Promise<void> {
    if (this.#beginning !== undefined && this.#beginning.size > 0) {
      await Promise.allSettled(this.#beginning.values());
    }
  }

  /** The shards that began a transaction of their own (not those that joined one), to commit or roll back. */
  #participants(): Participant[] {
    for (const shard of this.#joined) {
      this.#scope.forks.get(shard)?.resetTransactionContext();
    }
    return [...this.#begun].filter(([shard]) => !this.#joined.has(shard)).map(([shard, ctx]) => ({ shard, fork: this.#scope.forks.get(shard)!, ctx }));
  }
}
