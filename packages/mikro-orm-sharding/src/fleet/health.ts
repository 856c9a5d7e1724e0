import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { BREAKER_DEFAULTS, CircuitBreaker, type BreakerSettings, type CircuitBreakerOptions, type ShardHealth } from './circuit-breaker.ts';

/**
 * The availability of every shard of one fleet: one {@link CircuitBreaker} per shard, made on first use, fed by the
 * shard's connection pool (see pool-gate.ts) and read by the application (`orm.health()`) and by partial reads.
 * Not exported from the package.
 */
export class FleetHealth {
  readonly #settings: BreakerSettings | false;
  readonly #now: () => number;
  readonly #breakers = new Map<ShardId, CircuitBreaker>();

  constructor(settings: BreakerSettings | false, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
  }

  /** Whether the circuit breaker is on. */
  get enabled(): boolean {
    return this.#settings !== false;
  }

  /** A shard's breaker. */
  breaker(shard: ShardId): CircuitBreaker {
    let breaker = this.#breakers.get(shard);
    if (!breaker) {
      breaker = new CircuitBreaker(shard, this.#settings, this.#now);
      this.#breakers.set(shard, breaker);
    }
    return breaker;
  }

  /** Forgets a removed shard's breaker (a shard added again under its id starts closed). */
  forget(shard: ShardId): void {
    this.#breakers.delete(shard);
  }

  /** A shard's state now. */
  of(shard: ShardId): ShardHealth {
    return this.breaker(shard).health();
  }

  /** Whether a connection to the shard would be refused now (its circuit is open and cooling down), counting nothing. */
  refusesNow(shard: ShardId): boolean {
    return this.#breakers.get(shard)?.refusesNow() ?? false;
  }

  /** The error a connection to the shard would be refused with now (its circuit is open and cooling down), if any. */
  refuseNow(shard: ShardId): ShardingError | undefined {
    return this.#breakers.get(shard)?.refuseNow();
  }
}

/** The `circuitBreaker` option checked, with defaults filled in; `false` turns the breaker off. */
export function breakerSettings(option: CircuitBreakerOptions | boolean | undefined): BreakerSettings | false {
  if (option === false) {
    return false;
  }
  if (option === undefined || option === true) {
    return BREAKER_DEFAULTS;
  }
  if (option === null || typeof option !== 'object') {
    throw ShardingError.invalidOptions('`circuitBreaker` must be an options object, true or false.', option);
  }
  const settings = { ...BREAKER_DEFAULTS, ...definedOnly(option) };
  const whole = (name: 'failureThreshold' | 'halfOpenProbes', min: number) => {
    const value = settings[name];
    if (!Number.isInteger(value) || value < min) {
      throw ShardingError.invalidOptions(`\`circuitBreaker.${name}\` must be a whole number of at least ${min}; got ${String(value)}.`, value);
    }
  };
  whole('failureThreshold', 1);
  whole('halfOpenProbes', 1);
  if (typeof settings.coolDownMs !== 'number' || !Number.isFinite(settings.coolDownMs) || settings.coolDownMs < 0) {
    throw ShardingError.invalidOptions(
      `\`circuitBreaker.coolDownMs\` must be a number of milliseconds >= 0; got ${String(settings.coolDownMs)}.`,
      settings.coolDownMs,
    );
  }
  if (settings.onStateChange !== undefined && typeof settings.onStateChange !== 'function') {
    throw ShardingError.invalidOptions('`circuitBreaker.onStateChange` must be a function.', settings.onStateChange);
  }
  return Object.freeze(settings);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
