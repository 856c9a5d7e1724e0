import type { MaybePromise } from '../choosers.ts';

/** Applies `then` to a value or a promise of it, staying synchronous for a value: routing runs on every read and write. */
export function settled<T, R>(value: MaybePromise<T>, then: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(then) : then(value);
}
