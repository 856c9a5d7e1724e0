import { ReferenceKind, Utils, type Dictionary, type EntityMetadata, type EntityProperty } from '@mikro-orm/core';

/**
 * Whether rows of a query may repeat their root entity: a condition through a to-many relation joins it, and a root
 * with three matching children comes back three times. MikroORM keeps the first of each (`em.find` returns every
 * entity once, and `em.count` counts distinct roots); a merge must too, before it skips and cuts a page. Anything
 * this cannot read counts as repeating, which only costs a pass over the rows.
 */
export function repeatsRoots(meta: EntityMetadata, where: unknown): boolean {
  if (where === undefined || where === null) {
    return false;
  }
  if (Array.isArray(where)) {
    return where.some(item => Utils.isPlainObject(item) && repeatsRoots(meta, item));
  }
  if (!Utils.isPlainObject(where)) {
    return false;
  }
  for (const [key, value] of Object.entries(where)) {
    if (key === '$and' || key === '$or' || key === '$not') {
      if (repeatsRoots(meta, value)) {
        return true;
      }
      continue;
    }
    if (key.startsWith('$')) {
      continue;
    }
    const prop = meta.properties[key as keyof typeof meta.properties] as EntityProperty | undefined;
    if (!prop) {
      return true;
    }
    if (prop.kind === ReferenceKind.ONE_TO_MANY || prop.kind === ReferenceKind.MANY_TO_MANY) {
      return true;
    }
    if (
      (prop.kind === ReferenceKind.MANY_TO_ONE || prop.kind === ReferenceKind.ONE_TO_ONE) &&
      prop.targetMeta &&
      Utils.isPlainObject(value) &&
      repeatsRoots(prop.targetMeta, value)
    ) {
      return true;
    }
  }
  return false;
}

/** Each root's first row, in order (rows of one shard, whose primary key is unique there). */
export function firstOfEachRoot(meta: EntityMetadata, rows: readonly Dictionary[]): Dictionary[] {
  const fields = meta.getPrimaryProps().flatMap(prop => prop.fieldNames);
  const seen = new Set<unknown>();
  return rows.filter(row => {
    const key = fields.length === 1 ? row[fields[0]!] : JSON.stringify(fields.map(field => row[field]));
    if (seen.has(key)) {
      return false;
    }
    seen.add(key);
    return true;
  });
}
