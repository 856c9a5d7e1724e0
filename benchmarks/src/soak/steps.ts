// What one request of a soak client does, and how it checks what it sees. Each step runs inside the request's own
// context (`ShardedRequestContext.create`), on `orm.em`, which resolves to the request's entity manager there.
import type { ShardedEntityManager, TransactionMode } from 'mikro-orm-sharding';
import { accountIds, accountShard, itemShard, ITEM_SPAN, ownerTag, shardName, SoakAccount, SoakItem } from './model.ts';

/** One virtual client: its owner tag and what it knows it committed. */
export class SoakClient {
  readonly index: number;
  readonly owner: string;
  /** Item ids committed, in commit order. */
  readonly items: number[] = [];
  /** The committed balance of each of its two accounts (see `accountIds`); both open at 0. */
  readonly accounts: [number, number] = [0, 0];
  /**
   * What writes that failed may or may not have committed (an error after the commit): items, and how far each
   * account's balance, and their sum, may be off. A transfer between the two accounts moves no money in or out: when
   * it fails, the sum stays certain, since all-or-nothing is what a transaction promises.
   */
  uncertainItems = 0;
  readonly uncertainAccounts: [number, number] = [0, 0];
  uncertainBalance = 0;
  #seq = 0;

  constructor(index: number) {
    this.index = index;
    this.owner = ownerTag(index);
  }

  /** The committed sum of its accounts' balances. */
  get balance(): number {
    return this.accounts[0] + this.accounts[1];
  }

  /** Adds what a request committed. */
  committed({ items, accounts }: Committed): void {
    this.items.push(...items);
    this.accounts[0] += accounts[0];
    this.accounts[1] += accounts[1];
  }

  /** Adds what a failed request may have committed. */
  uncertain({ items, accounts }: Committed): void {
    this.uncertainItems += items.length;
    this.uncertainAccounts[0] += Math.abs(accounts[0]);
    this.uncertainAccounts[1] += Math.abs(accounts[1]);
    this.uncertainBalance += Math.abs(accounts[0] + accounts[1]);
  }

  /** A fresh item id of this client; with `onShard`, one that routes to that shard index. */
  nextItemId(shards: number, onShard?: number): number {
    for (;;) {
      const seq = this.#seq++;
      if (seq >= ITEM_SPAN) {
        throw new Error(`client ${this.owner} ran out of item ids`);
      }
      const id = this.index * ITEM_SPAN + seq;
      if (onShard === undefined || itemShard(id, shards) === onShard) {
        return id;
      }
    }
  }
}

/** What a request may use. */
export interface StepContext {
  /** The request's sharded entity manager. */
  readonly em: ShardedEntityManager;
  readonly client: SoakClient;
  readonly shards: number;
  readonly random: () => number;
  /**
   * Runs a transaction that spans shards once fewer than the run's limit are under way. Such a transaction holds a
   * pooled connection on each shard it touches while it waits for the next (and `twopc` one more on the log shard):
   * with more of them than the pools can serve, they wait for each other until the connect timeout.
   */
  readonly acrossShards: <T>(run: () => Promise<T>) => Promise<T>;
  /**
   * What the step is about to commit, set before it writes: on success it is added to what the client committed; if
   * the step throws, to what it may have committed.
   */
  planned: Committed;
}

/** New item ids, and the change to each of the client's two account balances. */
export interface Committed {
  readonly items: readonly number[];
  readonly accounts: readonly [number, number];
}

export const NOTHING: Committed = Object.freeze({ items: [], accounts: [0, 0] as const });

/** A request saw something it must never see: another request's entity, a row it committed missing, a wrong answer. */
export class SoakViolation extends Error {
  readonly kind: 'isolation' | 'lost-row' | 'wrong-answer';
  constructor(kind: SoakViolation['kind'], message: string) {
    super(message);
    this.name = 'SoakViolation';
    this.kind = kind;
  }
}

export type Step = (ctx: StepContext) => Promise<void>;

/** Writes one to three new items through the unit of work (routed by the shard chooser, one flush). */
export const write: Step = async ctx => {
  const { em, client, shards } = ctx;
  const count = 1 + Math.floor(ctx.random() * 3);
  const ids = Array.from({ length: count }, () => client.nextItemId(shards));
  for (const id of ids) {
    em.create(SoakItem, { id, owner: client.owner, seq: id % ITEM_SPAN });
  }
  ctx.planned = { items: ids, accounts: [0, 0] };
  await em.flush();
};

/** Reads one of the client's committed items by primary key: it must be there, and be the client's. */
export const read: Step = async ctx => {
  const { em, client } = ctx;
  if (client.items.length === 0) {
    return write(ctx);
  }
  const id = client.items[Math.floor(ctx.random() * client.items.length)]!;
  const item = await em.findOne(SoakItem, id);
  if (!item) {
    throw new SoakViolation('lost-row', `${client.owner} committed item ${id}, findOne did not find it`);
  }
  if (item.owner !== client.owner) {
    throw new SoakViolation('wrong-answer', `${client.owner} read item ${id} owned by ${item.owner}`);
  }
};

/** A query over every shard: the client's newest items, merged, and their count; exact while nothing is uncertain. */
export const fanOut: Step = async ctx => {
  const { em, client } = ctx;
  const [page, total] = await em.findAndCount(SoakItem, { owner: client.owner }, { orderBy: { id: 'desc' }, limit: 5 });
  if (page.some(item => item.owner !== client.owner)) {
    throw new SoakViolation('wrong-answer', `${client.owner}'s query returned another owner's items`);
  }
  if (client.uncertainItems === 0) {
    const expected = client.items.toSorted((a, b) => b - a).slice(0, 5);
    const got = page.map(item => item.id);
    if (total !== client.items.length || got.join() !== expected.join()) {
      throw new SoakViolation('lost-row', `${client.owner} committed ${client.items.length} items (newest ${expected}); the fan-out saw ${total} (${got})`);
    }
  }
};

/**
 * A transaction on one shard, through plain MikroORM on that shard's fork (`em.on(shard).transactional`): credit the
 * client's first account and write an item on the same shard, both or neither.
 */
export const oneShardTransaction: Step = async ctx => {
  const { em, client, shards } = ctx;
  const [account] = accountIds(client.index);
  const shard = accountShard(account, shards);
  const id = client.nextItemId(shards, shard);
  ctx.planned = { items: [id], accounts: [1, 0] };
  await em.on(shardName(shard)).transactional(async tx => {
    const row = await tx.findOneOrFail(SoakAccount, account);
    row.balance += 1;
    tx.create(SoakItem, { id, owner: client.owner, seq: id % ITEM_SPAN });
  });
};

/**
 * A transfer of 1 to 10 between the client's two accounts, which live on two different shards, through the sharded
 * entity manager: `em.transactional(..., { mode })`. Both balances change or neither, so the sum of the client's
 * balances never moves; the final check proves it.
 */
export function transfer(mode: TransactionMode): Step {
  return async ctx => {
    const { em, client } = ctx;
    const amount = 1 + Math.floor(ctx.random() * 10);
    const from = ctx.random() < 0.5 ? 0 : 1;
    ctx.planned = { items: [], accounts: from === 0 ? [-amount, amount] : [amount, -amount] };
    const ids = accountIds(client.index);
    await ctx.acrossShards(() =>
      em.transactional(
        async tx => {
          const [source, target] = await Promise.all([tx.findOneOrFail(SoakAccount, ids[from]), tx.findOneOrFail(SoakAccount, ids[1 - from]!)]);
          source.balance -= amount;
          target.balance += amount;
        },
        { mode },
      ),
    );
  };
}

/**
 * The transactional steps of the soak, by name (`--tx`). Each keeps the client's invariants: its items are exactly
 * those it committed, each account's balance is what it committed, and the sum of its two accounts' balances moves
 * only by what the one-shard step credits.
 */
export const TRANSACTION_STEPS: Readonly<Record<string, Step>> = Object.freeze({
  'one-shard': oneShardTransaction,
  twopc: transfer('twopc'),
  multi: transfer('multi'),
});

/** Steps that need two-phase commit configured on the fleet. */
export const TWO_PHASE_STEPS: ReadonlySet<string> = new Set(['twopc']);

/** The default `--tx`: a one-shard transaction and a two-phase transfer across two shards, alike often. */
export const DEFAULT_TRANSACTIONS: readonly string[] = Object.freeze(['one-shard', 'twopc']);

/** Fails the request if any entity it holds, on any shard, belongs to another client. */
export function checkIsolation(em: ShardedEntityManager, client: SoakClient, shardIds: readonly string[]): void {
  const accounts = accountIds(client.index);
  for (const shard of shardIds) {
    for (const entity of em.on(shard).getUnitOfWork().getIdentityMap().values()) {
      const mine = entity instanceof SoakAccount ? accounts.includes(entity.id) && entity.owner === client.owner : (entity as SoakItem).owner === client.owner;
      if (!mine) {
        throw new SoakViolation(
          'isolation',
          `${client.owner}'s request holds ${entity.constructor.name} ${(entity as SoakItem).id} of ${(entity as SoakItem).owner}`,
        );
      }
    }
  }
}
