// What every in-process system under test offers the phase runner.
import type { StrategyName, TxMode } from '../args.ts';
import type { Databases } from '../databases.ts';
import type { ItemLike, Row } from '../workload.ts';

/** One unit of work for phase P (a fresh fork per 100 lookups). */
export interface LookupSession {
  findById(id: number): Promise<ItemLike | null>;
}

export interface System {
  readonly name: string;
  /** How many databases the system spreads the rows over. */
  readonly databases: number;
  /** One batch of phase W: persist all rows, one flush (one unit of work). */
  insertBatch(rows: readonly Row[]): Promise<void>;
  /** A fresh unit of work for lookups by primary key. */
  session(): LookupSession;
  /** `score >= x order by score desc`, the page at `offset`, `limit` rows, over all the system's data. */
  topPage(x: number, offset: number, limit: number): Promise<ItemLike[]>;
  /** How many rows have `score >= x`, over all the system's data. */
  count(x: number): Promise<number>;
  /**
   * One transactional unit of work (phases T and X): a fresh fork, each row found by id and its score raised by 1,
   * committed. `mode` (sharded only) is the transaction mode; without it, the system's default.
   */
  transaction(ids: readonly number[], mode?: TxMode): Promise<void>;
  /** Closes the ORMs and drops the databases. */
  close(): Promise<void>;
}

export interface SystemContext {
  dbs: Databases;
  /** S, the shard count of the run (plain ignores it). */
  shards: number;
  /** How the sharded system routes (the others ignore it). */
  strategy: StrategyName;
  /** Rows written in phase W (ids 0 ... rows - 1): where the range strategy cuts. */
  rows: number;
  /** The sharded system commits in two phases in this run (PostgreSQL, phase X in mode twopc). */
  twoPhase?: boolean;
}
