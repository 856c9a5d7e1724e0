import { DefaultLogger, SimpleLogger, type LogContext, type Logger, type LoggerNamespace, type LoggerOptions, type Options } from '@mikro-orm/core';
import type { ShardId } from '../choosers.ts';

/**
 * A shard's logger: the one MikroORM would make for it (yours from `loggerFactory`, else its default), naming the
 * shard in everything it logs. Custom loggers read `context.shard`; MikroORM's print the label, `[query] (shard s1)
 * select ...`. A query's own `logging: { label }` replaces the label (not `shard`).
 *
 * A logger rather than a logger context on each shard's root entity manager: MikroORM merges that context into every
 * fork and every query (measured: 50 us a primary-key lookup), while a logger is asked only when it logs.
 */
export class ShardLogger implements Logger {
  readonly #inner: Logger;
  readonly #shard: ShardId;
  readonly #label: string;
  readonly #builtIn: boolean;

  constructor(inner: Logger, shard: ShardId) {
    this.#inner = inner;
    this.#shard = shard;
    this.#label = `shard ${shard}`;
    this.#builtIn = isBuiltInLogger(inner);
  }

  /** The logger MikroORM would have used. */
  get inner(): Logger {
    return this.#inner;
  }

  log(namespace: LoggerNamespace | (string & {}), message: string, context?: LogContext): void {
    this.#inner.log(namespace, message, this.#named(context));
  }

  error(namespace: LoggerNamespace | (string & {}), message: string, context?: LogContext): void {
    this.#inner.error(namespace, message, this.#named(context));
  }

  warn(namespace: LoggerNamespace | (string & {}), message: string, context?: LogContext): void {
    this.#inner.warn(namespace, message, this.#named(context));
  }

  logQuery(context: LogContext): void {
    // MikroORM's own loggers log nothing their `isEnabled` refuses: then naming the shard would only allocate.
    if (this.#builtIn && !this.#inner.isEnabled(context.namespace ?? 'query', context)) {
      return;
    }
    this.#inner.logQuery(this.#named(context));
  }

  setDebugMode(debugMode: boolean | LoggerNamespace[]): void {
    this.#inner.setDebugMode(debugMode);
  }

  isEnabled(namespace: LoggerNamespace, context?: LogContext): boolean {
    return this.#inner.isEnabled(namespace, context);
  }

  #named(context: LogContext | undefined): LogContext {
    return { ...context, shard: this.#shard, label: context?.label ?? this.#label };
  }
}

const BUILT_IN = new Set<unknown>([DefaultLogger.prototype.logQuery, SimpleLogger.prototype.logQuery]);

/** Whether a logger is one of MikroORM's own (which log nothing `isEnabled` refuses, and read no `formatted`). */
export function isBuiltInLogger(logger: Logger): boolean {
  return BUILT_IN.has((logger instanceof ShardLogger ? logger.inner : logger).logQuery);
}

/** A shard's options with its loggers naming it (`loggerFactory`, and `slowQueryLoggerFactory` when you set one). */
export function withShardLoggers<O extends Pick<Options, 'loggerFactory' | 'slowQueryLoggerFactory'>>(options: O, shard: ShardId): O {
  const make = options.loggerFactory ?? ((logOptions: LoggerOptions) => DefaultLogger.create(logOptions));
  const slow = options.slowQueryLoggerFactory;
  return {
    ...options,
    loggerFactory: (logOptions: LoggerOptions) => new ShardLogger(make(logOptions), shard),
    ...(slow ? { slowQueryLoggerFactory: (logOptions: LoggerOptions) => new ShardLogger(slow(logOptions), shard) } : {}),
  };
}
