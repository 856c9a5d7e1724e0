import type { EntityName, EntityRepository } from '@mikro-orm/core';
import type { ShardId } from './choosers.ts';
import { shardWith } from './fleet/fleet-metadata.ts';
import type { ShardedEntityManager } from './ShardedEntityManager.ts';
import type { ShardedMikroORM } from './ShardedMikroORM.ts';

/**
 * A repository used through a sharded entity manager: your repository class (what `em.getRepository(Book)` gives in
 * MikroORM), constructed with the sharded entity manager, so its inherited methods run sharded and
 * `getEntityManager()` returns the sharded entity manager. Inside the class, `this.em` is that sharded entity
 * manager too (MikroORM's class declares it as an `EntityManager`).
 *
 * @example
 * ```ts
 * class BookRepository extends EntityRepository<Book> {
 *   findByTitle(title: string) {
 *     return this.findOne({ title });
 *   }
 * }
 * const books = em.getRepository(Book); // ShardedRepository<BookRepository>
 * await books.findByTitle('Kindred');
 * ```
 */
export type ShardedRepository<Repository, Id extends string = ShardId> = { getEntityManager(): ShardedEntityManager<Id> } & Repository;

/** MikroORM's default repository over a sharded entity manager, for annotations: `ShardedEntityRepository<Book>`. */
export type ShardedEntityRepository<Entity extends object, Id extends string = ShardId> = ShardedRepository<EntityRepository<Entity>, Id>;

type RepositoryClass = new (em: ShardedEntityManager, entityName: EntityName<object>) => object;

/**
 * Builds the repository of an entity as MikroORM does (the entity's `repository`, else the `entityRepository`
 * option, else the driver's), from the configuration of the first shard that knows the entity.
 */
export function repositoryFor(orm: ShardedMikroORM, em: ShardedEntityManager, entityName: EntityName<object>): object {
  const shard = orm.fleet.template(shardWith(orm, entityName));
  const meta = shard.getMetadata().get(entityName);
  const Repository = shard.config.getRepositoryClass(meta.repository) as unknown as RepositoryClass;
  return new Repository(em, entityName);
}
