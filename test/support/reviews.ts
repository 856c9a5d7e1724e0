import { defineEntity, p } from '@mikro-orm/core';
import { EntityRepository } from '@mikro-orm/sqlite';
import { Book } from './entities.ts';

/**
 * A custom repository, declared the MikroORM way (`repository: () => ReviewRepository`). It extends the SQL
 * drivers' `EntityRepository` (MikroORM's `SqlEntityRepository`), as an application importing it from its driver does.
 */
export class ReviewRepository extends EntityRepository<Review> {
  /** Uses the inherited `find`. */
  best(limit: number) {
    return this.find({ stars: { $gte: 4 } }, { orderBy: { stars: 'desc', id: 'asc' }, limit });
  }

  /** Uses `this.em` directly. */
  async averageStars(): Promise<number> {
    const all = await this.em.find(Review, {});
    return all.reduce((sum, review) => sum + review.stars, 0) / all.length;
  }

  /** A query builder runs on one database. */
  countWithQueryBuilder() {
    return this.qb().getCount();
  }
}

export const ReviewSchema = defineEntity({
  name: 'Review',
  repository: () => ReviewRepository,
  properties: {
    id: p.integer().primary().autoincrement(false),
    stars: p.integer(),
    book: () => p.manyToOne(Book),
  },
});
export class Review extends ReviewSchema.class {}
ReviewSchema.setClass(Review);
