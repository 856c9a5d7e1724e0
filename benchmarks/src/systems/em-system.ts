// The phases as one entity manager API runs them: plain MikroORM and the sharded entity manager take the very same
// calls (that is the library's promise), so one definition serves both systems.
import type { EntityClass } from '@mikro-orm/core';
import type { TxMode } from '../args.ts';
import type { ItemLike, Row } from '../workload.ts';
import type { System } from './system.ts';

/** The part of an entity manager (MikroORM's or the sharded one) that the workload uses. */
export interface WorkloadEntityManager {
  create(entityName: EntityClass<ItemLike>, data: Row): unknown;
  flush(): Promise<void>;
  findOne(entityName: EntityClass<ItemLike>, id: number): Promise<ItemLike | null>;
  find(entityName: EntityClass<ItemLike>, where: object, options: object): Promise<ItemLike[]>;
  count(entityName: EntityClass<ItemLike>, where: object): Promise<number>;
  transactional<T>(cb: (em: WorkloadEntityManager) => Promise<T>, options?: { mode?: TxMode }): Promise<T>;
}

export function entityManagerSystem(
  name: string,
  databases: number,
  Item: EntityClass<ItemLike>,
  fork: () => WorkloadEntityManager,
  close: () => Promise<void>,
): System {
  const order = { score: 'desc' } as const;
  return {
    name,
    databases,
    async insertBatch(rows: readonly Row[]) {
      const em = fork();
      for (const row of rows) em.create(Item, row);
      await em.flush();
    },
    session() {
      const em = fork();
      return { findById: (id: number) => em.findOne(Item, id) };
    },
    topPage(x, offset, limit) {
      return fork().find(Item, { score: { $gte: x } }, { orderBy: order, limit, offset });
    },
    count(x) {
      return fork().count(Item, { score: { $gte: x } });
    },
    async transaction(ids, mode) {
      await fork().transactional(
        async em => {
          for (const id of ids) {
            const item = await em.findOne(Item, id);
            item!.score += 1;
          }
        },
        mode === undefined ? undefined : { mode },
      );
    },
    close,
  };
}
