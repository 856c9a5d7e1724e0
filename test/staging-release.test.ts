import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { helper, type EntityManager } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShardedEntityManager, ShardedMikroORM } from 'mikro-orm-sharding';
import { Author, Book } from './support/entities.ts';
import { openFleet, shardOfId } from './support/fleet.ts';
import { sqliteTopology, type Topology } from './support/topology.ts';

// New entities are made on a staging fork until their shard is decided. That fork must let go of them once they
// are written (the shard's fork holds them, as MikroORM does) and when the entity manager is cleared.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let topology: Topology;
let orm: ShardedMikroORM;

beforeAll(async () => {
  topology = sqliteTopology();
  orm = await openFleet(topology);
});

afterAll(async () => {
  await orm?.close();
  await topology?.dispose();
});

/** A new author with a new book, and a book referencing author 1 by key: the reference is made by the staging fork. */
function stage(em: ShardedEntityManager, id: number): { author: Author; staging: EntityManager } {
  const author = em.create(Author, { id, name: 'staged', books: [{ id: id * 10, title: 'nested' }] } as never);
  const byKey = em.create(Book, { id: id * 10 + 1, title: 'by key', author: id } as never);
  const staging = helper(byKey.author).__em as EntityManager;
  expect(staging).toBeDefined();
  return { author, staging };
}

const held = (fork: EntityManager) =>
  [...fork.getUnitOfWork().getIdentityMap().values()].map(entity => `${helper(entity).__meta.className}#${helper(entity).getSerializedPrimaryKey()}`);

describe('the staging fork', () => {
  it('holds the staged entities until the flush, then nothing; the shard’s fork holds them', async () => {
    const em = orm.em.fork();
    const { staging } = stage(em, 1);
    expect(held(staging).sort()).toEqual(['Author#1', 'Book#10']);
    await em.flush();
    expect(held(staging)).toEqual([]);
    expect(held(em.on(shardOfId(1))).sort()).toEqual(['Author#1', 'Book#10', 'Book#11']);
  });

  it('lets go of everything on clear(), so nothing keeps a cleared entity alive', async () => {
    const em = orm.em.fork();
    const refs = await (async () => {
      const { author, staging } = stage(em, 7);
      await em.flush();
      return { author: new WeakRef(author), book: new WeakRef(author.books.getItems()[0]!), staging };
    })();
    em.clear();
    expect(held(refs.staging)).toEqual([]);
    for (let i = 0; i < 5 && (refs.author.deref() || refs.book.deref()); i++) {
      await new Promise(resolve => setImmediate(resolve));
      gc();
    }
    expect([refs.author.deref(), refs.book.deref()]).toEqual([undefined, undefined]);
    expect(em).toBeDefined(); // the entity manager itself is still alive
  });

  it('lets go on clear() of entities that were never flushed', () => {
    const em = orm.em.fork();
    const { staging } = stage(em, 9);
    em.clear();
    expect(held(staging)).toEqual([]);
  });
});
