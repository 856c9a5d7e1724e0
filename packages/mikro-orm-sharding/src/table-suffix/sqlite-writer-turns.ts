import type { EventSubscriber, TransactionEventArgs } from '@mikro-orm/core';
import { databaseOf } from './same-database.ts';

/** Per SQLite file: the end of the last writer's turn (a promise chain, one writer after another). */
const turns = new Map<string, { tail: Promise<void>; waiting: number }>();
/** The release of the turn a transaction holds, by its MikroORM connection's transaction object. */
const held = new WeakMap<object, () => void>();

/**
 * Makes transactions of the MikroORMs sharing one SQLite file take turns, as one MikroORM's single connection would.
 * Each table-suffix shard has its own connection to the file; better-sqlite3 is synchronous, so a second writer
 * waiting on SQLite's lock would block the whole process while the first could never finish: instead it waits here,
 * asynchronously, until the first one's commit or rollback.
 *
 * The turn is taken at `afterTransactionStart`, once the transaction exists: SQLite's (deferred) BEGIN locks
 * nothing, so waiting after it is safe, and a begin that fails (or that another subscriber stops) has taken no
 * turn that could be left held. Savepoints, and shards that joined another shard's transaction, begin nothing and
 * wait for nothing. Other drivers pass through.
 */
export function sqliteWriterTurns(): EventSubscriber {
  return {
    async afterTransactionStart(args: TransactionEventArgs): Promise<void> {
      const transaction = args.transaction;
      const file = transaction !== undefined && transaction.savepointName === undefined ? sqliteFile(args) : undefined;
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
      // Held from now on: a commit or rollback while waiting (none can come before MikroORM's begin returns) ends it.
      held.set(transaction!, () => {
        release();
        if (--mine.waiting === 0 && turns.get(file) === mine) {
          turns.delete(file);
        }
      });
      await previous;
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
