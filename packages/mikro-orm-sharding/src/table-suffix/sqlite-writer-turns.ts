import type { EventSubscriber, TransactionEventArgs } from '@mikro-orm/core';
import { databaseOf } from './same-database.ts';

/** Per SQLite file: the end of the last writer's turn (a promise chain, one writer after another). */
const turns = new Map<string, { tail: Promise<void>; waiting: number }>();
/** The release of the turn a transaction holds, by its MikroORM connection's transaction object. */
const held = new WeakMap<object, () => void>();
const pending = new WeakMap<object, () => void>();

/**
 * Makes transactions of the MikroORMs sharing one SQLite file take turns, as one MikroORM's single connection would.
 * Each table-suffix shard has its own connection to the file; better-sqlite3 is synchronous, so a second writer
 * waiting on SQLite's lock would block the whole process while the first could never finish: instead it waits here,
 * asynchronously, from `beforeTransactionStart` until the first one's commit or rollback. Savepoints, and shards
 * that joined another shard's transaction, begin nothing and wait for nothing. Other drivers pass through.
 */
export function sqliteWriterTurns(): EventSubscriber {
  return {
    async beforeTransactionStart(args: TransactionEventArgs): Promise<void> {
      const file = args.transaction === undefined ? sqliteFile(args) : undefined;
      if (file === undefined) {
        return;
      }
      let turn = turns.get(file);
      if (!turn) {
        turn = { tail: Promise.resolve(), waiting: 0 };
        turns.set(file, turn);
      }
      const previous = turn.tail;
      let release!: () => void;
      turn.tail = new Promise<void>(resolve => (release = resolve));
      turn.waiting++;
      const mine = turn;
      const done = () => {
        release();
        if (--mine.waiting === 0 && turns.get(file) === mine) {
          turns.delete(file);
        }
      };
      await previous;
      // The transaction object exists only after the start: keyed by the fork until then.
      pending.set(args.em, done);
    },
    afterTransactionStart(args: TransactionEventArgs): void {
      const done = pending.get(args.em);
      if (done !== undefined && args.transaction !== undefined && args.transaction.savepointName === undefined) {
        pending.delete(args.em);
        held.set(args.transaction, done);
      }
    },
    afterTransactionCommit: end,
    afterTransactionRollback: end,
  };
}

function end(args: TransactionEventArgs): void {
  const transaction = args.transaction;
  if (transaction === undefined) {
    return;
  }
  const done = held.get(transaction);
  if (done !== undefined) {
    held.delete(transaction);
    done();
  }
}

function sqliteFile(args: TransactionEventArgs): string | undefined {
  const database = databaseOf(args.em);
  return database?.startsWith('sqlite\0') ? database : undefined;
}
