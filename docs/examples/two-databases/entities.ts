import { defineEntity, p } from '@mikro-orm/core';

// The seed's `Spam(DeclarativeBase)`: a table of the first database.
export const SpamSchema = defineEntity({
  name: 'Spam',
  tableName: 'spam',
  properties: {
    id: p.integer().primary(),
    variety: p.string().length(50),
    origin: p.string().length(50).nullable(), // added later: the first database's second migration
  },
});
export class Spam extends SpamSchema.class {}
SpamSchema.setClass(Spam);

// The seed's `Eggs(DeclarativeBase2)`: a table of the second database.
export const EggsSchema = defineEntity({
  name: 'Eggs',
  tableName: 'eggs',
  properties: {
    id: p.integer().primary(),
    pkgQty: p.integer().default(12),
  },
});
export class Eggs extends EggsSchema.class {}
EggsSchema.setClass(Eggs);
