import type { Dictionary, EntityMetadata } from '@mikro-orm/core';

// Conditions and batches over many primary keys, for writes that name rows one by one (moves, copies).

/** Keys of primary keys per `$in`, and rows per insert: far below PostgreSQL's 65 535 parameters. */
export const CHUNK = 500;

/** A condition matching these primary keys. */
export function keysCondition(meta: EntityMetadata, pks: readonly unknown[]): Dictionary {
  if (meta.primaryKeys.length === 1) {
    return { [meta.primaryKeys[0]!]: { $in: pks } };
  }
  return { $or: pks.map(pk => Object.fromEntries(meta.primaryKeys.map((name, i) => [name, (pk as unknown[])[i]]))) };
}

/** Splits a list into chunks of {@link CHUNK}. */
export function chunksOf<T>(items: readonly T[], size = CHUNK): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    chunks.push(items.slice(i, i + size));
  }
  return chunks;
}
