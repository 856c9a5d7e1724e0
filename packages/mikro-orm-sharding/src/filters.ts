import { Utils, type Dictionary, type EntityName, type FilterDef } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';

/** A filter as `em.addFilter()` takes it. */
type Filter = Omit<FilterDef<EntityName | readonly EntityName[]>, 'rls'>;

/**
 * The filters and filter parameters set on one sharded entity manager. Each shard fork gets them when it is made,
 * and the forks that exist get them when they are set; MikroORM's own `addFilter`/`setFilterParams` on each fork do
 * the work (and the validation).
 */
export class ShardFilters {
  readonly #filters: Map<string, Filter>;
  readonly #params: Map<string, Dictionary>;

  constructor(filters = new Map<string, Filter>(), params = new Map<string, Dictionary>()) {
    this.#filters = filters;
    this.#params = params;
  }

  /** For a forked entity manager: MikroORM's `fork()` copies the filters and (deeply) their parameters. */
  copy(): ShardFilters {
    const params = new Map([...this.#params].map(([name, args]) => [name, Utils.copy(args)]));
    return new ShardFilters(new Map(this.#filters), params);
  }

  add(filter: Filter, forks: Iterable<SqlEntityManager>): void {
    for (const fork of forks) {
      fork.addFilter(filter);
    }
    this.#filters.set(filter.name, filter);
  }

  setParams(name: string, args: Dictionary, forks: Iterable<SqlEntityManager>): void {
    for (const fork of forks) {
      fork.setFilterParams(name, args);
    }
    this.#params.set(name, args);
  }

  params(name: string): Dictionary | undefined {
    return this.#params.get(name);
  }

  applyTo(fork: SqlEntityManager): void {
    for (const filter of this.#filters.values()) {
      fork.addFilter(filter);
    }
    for (const [name, args] of this.#params) {
      fork.setFilterParams(name, args);
    }
  }
}
