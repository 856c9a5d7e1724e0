// The soak test's data: items each client writes (tagged with the client's owner tag) and two accounts per client on
// two different shards. Every row routes by `id % shards`, in all three choosers, so a client knows where its rows are.
import { defineEntity, p } from '@mikro-orm/core';
import type { ShardedMikroORMOptions } from 'mikro-orm-sharding';

export const SoakItemSchema = defineEntity({
  name: 'SoakItem',
  tableName: 'soak_item',
  properties: {
    id: p.integer().primary().autoincrement(false),
    owner: p.string().length(16).index(),
    seq: p.integer(),
  },
});
export class SoakItem extends SoakItemSchema.class {}
SoakItemSchema.setClass(SoakItem);

export const SoakAccountSchema = defineEntity({
  name: 'SoakAccount',
  tableName: 'soak_account',
  properties: {
    id: p.integer().primary().autoincrement(false),
    owner: p.string().length(16),
    balance: p.integer(),
  },
});
export class SoakAccount extends SoakAccountSchema.class {}
SoakAccountSchema.setClass(SoakAccount);

/** Item ids of client `c` are `c * ITEM_SPAN + n`: unique, and in `int` range for up to 2 000 clients. */
export const ITEM_SPAN = 1_000_000;

export const shardName = (index: number): string => `s${index}`;
/** An item's shard index. */
export const itemShard = (id: number, shards: number): number => id % shards;
/**
 * A client's two accounts: ids `2c` and `2c + 1`, on shards `c % shards` and `(c + 1) % shards`: spread evenly,
 * and two different shards when there are at least two.
 */
export const accountIds = (client: number): readonly [number, number] => [2 * client, 2 * client + 1];
export const accountShard = (id: number, shards: number): number => (Math.floor(id / 2) + (id % 2)) % shards;
export const ownerTag = (client: number): string => `c${client}`;

/** The entities and choosers of a soak fleet of `count` shards. */
export function soakRouting(count: number): Pick<ShardedMikroORMOptions, 'entities' | 'shardChooser' | 'idChooser'> {
  return {
    entities: [SoakItem, SoakAccount],
    shardChooser: ({ entity }) => shardName(entity instanceof SoakAccount ? accountShard(entity.id, count) : itemShard((entity as SoakItem).id, count)),
    idChooser: ({ entityName, id }) => [shardName(entityName === 'SoakAccount' ? accountShard(Number(id), count) : itemShard(Number(id), count))],
  };
}
