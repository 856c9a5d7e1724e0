import { type Dictionary, type EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { onShard } from '../errors/shard-failure.ts';
import { rowOf } from '../mikro-internals.ts';
import type { ShardScope } from '../scope.ts';
import type { ShardTransaction } from '../transactions/transaction.ts';
import { isToOne, referenceRanks } from '../write/reference-order.ts';
import type { MovePlan } from './plan.ts';
import { checkIncoming, checkOutgoing, ownReference, pivotRows, type PivotCopy, type PivotDelete } from './references.ts';
import { rehome, type Rehomed } from './rehome.ts';
import { chunksOf, keysCondition } from '../write/keys.ts';
import { byClass, readerOf, readMovingRows, type MovingRow } from './rows.ts';

/**
 * One flush's moves, inside its two-phase transaction. {@link MoveRun.start} reads and locks every moving row on the
 * shards it leaves, refuses a reference the move would split, copies the rows (and their join-table rows) to their
 * new shards, and hands the loaded entities to the new shards' forks; the flush then writes their pending changes
 * there. {@link MoveRun.finish} deletes the old rows. The transaction commits all of it, or none.
 */
export class MoveRun {
  readonly #scope: ShardScope;
  readonly #transaction: ShardTransaction;
  readonly #rows = new Map<string, MovingRow>();
  readonly #pivotDeletes = new Map<ShardId, PivotDelete[]>();
  #rehomed: Rehomed | undefined;

  private constructor(scope: ShardScope, transaction: ShardTransaction) {
    this.#scope = scope;
    this.#transaction = transaction;
  }

  /** Everything up to the flush of the pending changes: nothing is left half-done if it throws. */
  static async start(scope: ShardScope, transaction: ShardTransaction, plan: MovePlan): Promise<MoveRun> {
    const run = new MoveRun(scope, transaction);
    const sources = [...new Set(plan.sources.values())];
    const readers = new Map<ShardId, SqlEntityManager>();
    for (const from of sources) {
      const fork = await run.#enlist(from);
      const reader = readerOf(fork);
      readers.set(from, reader);
      await onShard('flush', from, readMovingRows(scope, plan, from, reader, run.#rows));
    }
    checkOutgoing(scope, run.#rows);
    const pivots: PivotCopy[] = [];
    for (const from of sources) {
      const probe = readerOf(scope.forks.get(from)!);
      await onShard('flush', from, checkIncoming(scope, run.#rows, from, probe));
      const { copies, deletes } = await onShard('flush', from, pivotRows(scope, run.#rows, from, probe));
      pivots.push(...copies);
      run.#pivotDeletes.set(from, deletes);
    }
    await run.#copy(readers, pivots);
    run.#rehomed = rehome(
      scope,
      plan,
      [...run.#rows.values()].filter(row => row.reference !== undefined),
    );
    return run;
  }

  /** Deletes the rows (and join-table rows) the move copied from the shards they left. */
  async finish(): Promise<void> {
    const order = this.#order();
    const bySource = new Map<ShardId, MovingRow[]>();
    for (const row of this.#rows.values()) {
      if (row.stored !== undefined) {
        bySource.set(row.from, [...(bySource.get(row.from) ?? []), row]);
      }
    }
    for (const [from, rows] of bySource) {
      const fork = this.#scope.forks.get(from)!;
      await onShard('flush', from, this.#delete(fork, rows, this.#pivotDeletes.get(from) ?? [], order));
    }
  }

  /** After a failure: the entities go back to the forks of the shards they were to leave (the transaction rolls back). */
  undo(): void {
    this.#rehomed?.undo();
    this.#rehomed = undefined;
  }

  async #enlist(shard: ShardId): Promise<SqlEntityManager> {
    const ready = this.#transaction.ready(shard);
    if (ready) {
      await ready;
    }
    return this.#scope.fork(shard);
  }

  /** Inserts the rows on their new shards, parents first, then their join-table rows. */
  async #copy(readers: ReadonlyMap<ShardId, SqlEntityManager>, pivots: readonly PivotCopy[]): Promise<void> {
    const order = this.#order();
    const byTarget = new Map<ShardId, MovingRow[]>();
    for (const row of this.#rows.values()) {
      if (row.stored !== undefined) {
        byTarget.set(row.to, [...(byTarget.get(row.to) ?? []), row]);
      }
    }
    const targets = new Set([...byTarget.keys(), ...pivots.map(pivot => pivot.to)]);
    for (const to of targets) {
      const fork = await this.#enlist(to);
      const insert = async () => {
        const groups = [...byClass(byTarget.get(to) ?? [])].sort(([, a], [, b]) => rank(order, a[0]!) - rank(order, b[0]!));
        for (const [entityName, rows] of groups) {
          for (const chunk of chunksOf(rows)) {
            const data = chunk.map(row => this.#rowToWrite(readers.get(row.from)!, row));
            await fork.insertMany(entityName, data as never, { convertCustomTypes: false });
          }
        }
        const mine = pivots.filter(pivot => pivot.to === to);
        for (const meta of new Set(mine.map(pivot => pivot.meta))) {
          const reader = readers.values().next().value!;
          for (const chunk of chunksOf(mine.filter(pivot => pivot.meta === meta))) {
            await fork.insertMany(meta.class as EntityName<object>, chunk.map(pivot => rowOf(reader, pivot.stored)) as never, { convertCustomTypes: false });
          }
        }
      };
      await onShard('flush', to, insert());
    }
  }

  /**
   * The row written on the new shard: as stored, with the loaded entity's to-one references (which may point at its
   * new parent); its other pending changes are the flush's to write there, as updates.
   */
  #rowToWrite(reader: SqlEntityManager, row: MovingRow): Dictionary {
    const data = rowOf(reader, row.stored!);
    if (row.entity !== undefined) {
      const current = rowOf(this.#scope.forks.get(row.from)!, row.entity);
      for (const prop of row.meta.relations) {
        if (isToOne(prop) && ownReference(row, prop)) {
          data[prop.name] = current[prop.name] ?? null;
        }
      }
    }
    return data;
  }

  async #delete(fork: SqlEntityManager, rows: readonly MovingRow[], pivots: readonly PivotDelete[], order: ReadonlyMap<string, number>): Promise<void> {
    for (const pivot of pivots) {
      for (const chunk of chunksOf(pivot.pks)) {
        await fork.nativeDelete(pivot.meta.class as EntityName<object>, { [pivot.side]: { $in: chunk } } as never, { filters: false });
      }
    }
    const groups = [...byClass(rows)].sort(([, a], [, b]) => rank(order, b[0]!) - rank(order, a[0]!));
    for (const [entityName, group] of groups) {
      let deleted = 0;
      for (const chunk of chunksOf(group)) {
        deleted += await fork.nativeDelete(
          entityName,
          keysCondition(
            group[0]!.meta,
            chunk.map(row => row.pk),
          ) as never,
          { filters: false },
        );
      }
      if (deleted !== group.length) {
        // The rows were locked since they were read: anything else means they changed under the move.
        throw ShardingError.moveNotPossible(
          `${group.length} ${group[0]!.meta.className} rows`,
          group[0]!.from,
          group[0]!.to,
          `${deleted} of them were found to delete on the old shard; the transaction rolls back`,
        );
      }
    }
  }

  /** The moving entities, parents first. */
  #order(): ReadonlyMap<string, number> {
    return referenceRanks(new Set([...this.#rows.values()].map(row => row.meta)));
  }
}

function rank(order: ReadonlyMap<string, number>, row: MovingRow): number {
  return order.get(row.meta.root.className) ?? 0;
}
