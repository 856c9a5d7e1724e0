import { defineEntity, p } from '@mikro-orm/core';

/** The test model: authors with books, books with tags. Ids are assigned by the client so they can route. */
export const AuthorSchema = defineEntity({
  name: 'Author',
  properties: {
    id: p.integer().primary().autoincrement(false),
    name: p.string(),
    born: p.integer().nullable(),
    rating: p.decimal().nullable(),
    books: () => p.oneToMany(Book).mappedBy('author'),
  },
});
export class Author extends AuthorSchema.class {}
AuthorSchema.setClass(Author);

export const TagSchema = defineEntity({
  name: 'Tag',
  properties: {
    id: p.integer().primary().autoincrement(false),
    label: p.string(),
    books: () => p.manyToMany(Book).mappedBy('tags'),
  },
});
export class Tag extends TagSchema.class {}
TagSchema.setClass(Tag);

export const BookSchema = defineEntity({
  name: 'Book',
  properties: {
    id: p.integer().primary().autoincrement(false),
    title: p.string(),
    price: p.decimal().nullable(),
    author: () => p.manyToOne(Author),
    tags: () => p.manyToMany(Tag).owner(),
  },
});
export class Book extends BookSchema.class {}
BookSchema.setClass(Book);

export const entities = [Author, Book, Tag];
