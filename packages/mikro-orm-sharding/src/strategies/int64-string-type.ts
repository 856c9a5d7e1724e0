import { Type, type EntityProperty, type Platform } from '@mikro-orm/core';
import { traitsOf } from '../read/platform-traits.ts';

/**
 * A 64-bit integer kept exactly, as a decimal string in JavaScript: a `bigint` column on PostgreSQL, a `text` column
 * on SQLite. MikroORM's `p.bigint()` is an `integer` column on SQLite, which better-sqlite3 reads as a JavaScript
 * number, so every value of 2^53 or more comes back rounded (`p.bigint('string')` too: the rounding happens before
 * MikroORM sees the value). As text nothing is rounded; text orders like numbers as long as the values have the same
 * number of digits, as `idGenerator()`'s ids do (19 digits from 1985 to 2109).
 *
 * @example
 * ```ts
 * id: p.type(Int64StringType).primary().onCreate(() => ids.next())
 * ```
 */
export class Int64StringType extends Type<string, string> {
  override convertToDatabaseValue(value: string): string {
    // Also a bigint or a number a condition compares with; null stays null.
    return value === null || value === undefined ? value : String(value);
  }

  override convertToJSValue(value: string): string {
    return value === null || value === undefined ? value : String(value);
  }

  override getColumnType(prop: EntityProperty, platform: Platform): string {
    return traitsOf(platform).family === 'sqlite' ? 'text' : platform.getBigIntTypeDeclarationSQL(prop);
  }

  override compareAsType(): string {
    return 'string';
  }

  override get runtimeType(): string {
    return 'string';
  }
}
