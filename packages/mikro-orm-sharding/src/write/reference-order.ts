import { ReferenceKind, type EntityMetadata } from '@mikro-orm/core';

/**
 * Ranks entities so that each comes after the entities its to-one relations point at (rows are inserted parents
 * first, deleted children first), by root entity name. Relations of an entity to itself, and cycles, are left out:
 * such rows keep the order they are given in.
 */
export function referenceRanks(metas: Iterable<EntityMetadata>): Map<string, number> {
  const byName = new Map<string, EntityMetadata>();
  for (const meta of metas) {
    byName.set(meta.root.className, meta);
  }
  const ranks = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (name: string): number => {
    const known = ranks.get(name);
    if (known !== undefined) {
      return known;
    }
    if (visiting.has(name)) {
      return 0;
    }
    visiting.add(name);
    let rank = 0;
    for (const prop of byName.get(name)!.relations) {
      const target = prop.targetMeta?.root.className;
      if (isToOne(prop) && target !== undefined && target !== name && byName.has(target)) {
        rank = Math.max(rank, visit(target) + 1);
      }
    }
    visiting.delete(name);
    ranks.set(name, rank);
    return rank;
  };
  [...byName.keys()].forEach(visit);
  return ranks;
}

/** A relation that holds a foreign key on this entity's table: a many-to-one, or the owning side of a one-to-one. */
export function isToOne(prop: EntityMetadata['props'][number]): boolean {
  return prop.kind === ReferenceKind.MANY_TO_ONE || (prop.kind === ReferenceKind.ONE_TO_ONE && prop.owner === true);
}
