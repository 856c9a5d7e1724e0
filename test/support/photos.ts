import { defineEntity, p } from '@mikro-orm/core';

/** A photo, in the table of its album's suffix (`photo_<md5 of album key>`). */
export const PhotoSchema = defineEntity({
  name: 'Photo',
  properties: {
    id: p.integer().primary().autoincrement(false),
    albumKey: p.string(),
    title: p.string(),
    takenOn: p.string(),
    likes: p.integer(),
  },
});
export class Photo extends PhotoSchema.class {}
PhotoSchema.setClass(Photo);

/** An album: one shared table in the same database. */
export const AlbumSchema = defineEntity({
  name: 'Album',
  properties: {
    key: p.string().primary(),
    title: p.string(),
  },
});
export class Album extends AlbumSchema.class {}
AlbumSchema.setClass(Album);

/** A photo that points at an album: a relation that cannot leave a suffix shard. */
export const FramedSchema = defineEntity({
  name: 'Framed',
  properties: {
    id: p.integer().primary().autoincrement(false),
    album: () => p.manyToOne(Album),
  },
});
export class Framed extends FramedSchema.class {}
FramedSchema.setClass(Framed);
