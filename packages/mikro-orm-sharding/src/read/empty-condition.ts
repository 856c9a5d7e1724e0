import { Utils } from '@mikro-orm/core';

/** A condition that selects every row: none, `{}`; raw SQL fragments (symbol keys) count as a condition. */
export function isEmptyCondition(where: unknown): boolean {
  return where === undefined || where === null || (Utils.isPlainObject(where) && Utils.isEmpty(where) && Object.getOwnPropertySymbols(where).length === 0);
}
