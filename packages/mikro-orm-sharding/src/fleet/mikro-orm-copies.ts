import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseDriver } from '@mikro-orm/core';
import { AbstractSqlDriver } from '@mikro-orm/sql';
import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';

/**
 * The error for a driver built on another copy of MikroORM than the one this library loaded, or undefined when
 * the driver is not from a second copy. Two copies (a `file:` link to a checkout with its own node_modules, or
 * mismatched versions npm could not dedupe) break every `instanceof` between the library and the entities, so
 * say that instead of calling the driver unsupported.
 */
export function secondCopyError(shard: ShardId, driver: unknown): ShardingError | undefined {
  if (typeof driver !== 'function') return undefined;
  const copies: string[] = [];
  for (const [ours, pkg] of [
    [DatabaseDriver, '@mikro-orm/core'],
    [AbstractSqlDriver, '@mikro-orm/sql'],
  ] as const) {
    if (!(driver.prototype instanceof ours) && extendsClassNamed(driver, ours.name)) copies.push(`${pkg} (this library loads ${where(pkg)})`);
  }
  if (copies.length === 0) return undefined;
  return new ShardingError(
    'UNSUPPORTED_DRIVER',
    `Two copies of ${copies.join(' and of ')} are loaded: shard "${shard}"'s driver ${driver.name || 'an anonymous class'} is built on the other copy. ` +
      'Make every @mikro-orm/* package resolve to one copy: keep them all at one version, install mikro-orm-sharding from the registry or a packed tarball ' +
      '(not a link to a checkout with its own node_modules), then `npm dedupe`; `npm ls @mikro-orm/core` lists the copies.',
    { shard, value: driver },
  );
}

function extendsClassNamed(type: object, name: string): boolean {
  for (let proto: unknown = Object.getPrototypeOf(type); typeof proto === 'function'; proto = Object.getPrototypeOf(proto)) {
    if (proto.name === name) return true;
  }
  return false;
}

function where(pkg: string): string {
  try {
    const entry = fileURLToPath(import.meta.resolve(pkg));
    const dir = `${sep}${pkg.replace('/', sep)}${sep}`;
    const at = entry.lastIndexOf(dir);
    return at === -1 ? entry : entry.slice(0, at + dir.length - 1);
  } catch {
    return 'its own copy';
  }
}
