import type { EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';

/** SQL and its parameters, ready to run on any shard of the same driver. */
export interface CompiledQuery {
  readonly sql: string;
  readonly params: unknown[];
}

/** The parts of a query that decide its SQL. */
export interface QueryParts {
  readonly where: unknown;
  readonly orderBy?: unknown;
  readonly limit?: number | undefined;
}

/**
 * Builds a query's SQL once with MikroORM's QueryBuilder, so that every shard of one driver runs the same text
 * (a QueryBuilder per shard per query was the largest cost of fan-out, measured).
 */
export function compiledQuery(fork: SqlEntityManager, entityName: EntityName<object>, kind: 'select' | 'count', parts: QueryParts): CompiledQuery {
  const qb = fork.createQueryBuilder(entityName);
  if (kind === 'count') {
    qb.count();
  } else {
    qb.select('*');
  }
  if (parts.where !== undefined && parts.where !== null) {
    qb.where(parts.where as never);
  }
  if (kind === 'select' && parts.orderBy !== undefined) {
    qb.orderBy(parts.orderBy as never);
  }
  if (kind === 'select' && parts.limit !== undefined) {
    qb.limit(parts.limit);
  }
  const { sql, params } = qb.toQuery();
  return { sql, params: [...params] };
}
