import type { ShardId } from '../choosers.ts';
import { ShardingError } from '../errors/errors.ts';
import { redact } from '../errors/redact.ts';

/**
 * `closed`: connections are made as usual. `open`: the shard failed too often in a row; every connection attempt is
 * refused at once (`SHARD_UNAVAILABLE`) until the cool-down ends. `half-open`: the cool-down ended; a probe connects,
 * and its outcome closes or opens the circuit again.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * The per-shard circuit breaker of `ShardedMikroORM.init({ circuitBreaker })`. It watches the connections each
 * PostgreSQL shard's pool makes: after `failureThreshold` connection failures in a row (refused, reset, timed out,
 * server shutting down, no free pooled connection within `connectionTimeoutMillis`), the shard is refused at once for
 * `coolDownMs`, without touching the network; then probes are let through.
 *
 * @example
 * ```ts
 * circuitBreaker: { failureThreshold: 3, coolDownMs: 2_000, onStateChange: ({ shard, to }) => metrics.gauge(shard, to) }
 * ```
 */
export interface CircuitBreakerOptions {
  /**
   * Connection failures in a row that open a shard's circuit. A success resets the count.
   * @default 5
   */
  readonly failureThreshold?: number;
  /**
   * How long an open circuit refuses, in milliseconds, before a probe may connect.
   * @default 5_000
   */
  readonly coolDownMs?: number;
  /**
   * Connection attempts let through at once while half-open. The first success closes the circuit; a failure opens
   * it for another cool-down. A probe that has not settled after `coolDownMs` no longer holds its place.
   * @default 1
   */
  readonly halfOpenProbes?: number;
  /** Called after a shard's circuit changes state (synchronously: keep it short; what it throws is ignored). */
  readonly onStateChange?: (change: CircuitStateChange) => void;
}

/** A shard's circuit changing state, as given to {@link CircuitBreakerOptions.onStateChange}. */
export interface CircuitStateChange {
  readonly shard: ShardId;
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** The shard's state after the change. */
  readonly health: ShardHealth;
}

/** The last failure to reach a shard. */
export interface ShardFailureInfo {
  /** The driver's message, secrets masked. */
  readonly message: string;
  /** The driver's code (`ECONNREFUSED`, a SQLSTATE such as `57P01`), when it has one. */
  readonly code: string | undefined;
  readonly at: Date;
}

/** What the application can see of a shard's availability (`orm.health()`, `orm.shardState(id)`). */
export interface ShardHealth {
  readonly shard: ShardId;
  readonly state: CircuitState;
  /** Connection failures in a row, reset by a success. */
  readonly consecutiveFailures: number;
  /** Connection failures since `init()`. */
  readonly failures: number;
  /** Connection attempts refused at once by the open circuit since `init()`. */
  readonly refused: number;
  /** How many times the circuit opened since `init()`. */
  readonly opened: number;
  /** The last connection failure; undefined if there was none. */
  readonly lastError: ShardFailureInfo | undefined;
  /** When the circuit last opened; undefined while it never did. */
  readonly openedAt: Date | undefined;
  /** While open or half-open: when the next probe may connect. */
  readonly retryAt: Date | undefined;
}

/** The options in force: {@link CircuitBreakerOptions} with defaults, or `false` when the breaker is off. */
export type BreakerSettings = Required<Omit<CircuitBreakerOptions, 'onStateChange'>> & Pick<CircuitBreakerOptions, 'onStateChange'>;

export const BREAKER_DEFAULTS: Readonly<BreakerSettings> = Object.freeze({ failureThreshold: 5, coolDownMs: 5_000, halfOpenProbes: 1 });

/** The breaker's answer to one connection attempt: go ahead (and report back), or the error to fail with now. */
export type Admission = { readonly probe: boolean } | { readonly refused: ShardingError };

const PASS: Admission = Object.freeze({ probe: false });
const PROBE: Admission = Object.freeze({ probe: true });

/**
 * One shard's circuit: a small state machine fed by connection outcomes. `now` is injectable so the transitions can
 * be tested without waiting. With `settings` false it only counts (the state stays closed).
 */
export class CircuitBreaker {
  readonly shard: ShardId;
  readonly #settings: BreakerSettings | false;
  readonly #now: () => number;
  #state: CircuitState = 'closed';
  #consecutive = 0;
  #failures = 0;
  #refused = 0;
  #opened = 0;
  #lastError: ShardFailureInfo | undefined;
  #lastCause: unknown;
  #openedAt: number | undefined;
  #retryAt = 0;
  #probing = 0;

  constructor(shard: ShardId, settings: BreakerSettings | false, now: () => number = Date.now) {
    this.shard = shard;
    this.#settings = settings;
    this.#now = now;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** The error a connection attempt would be refused with now (counted as refused), or undefined when it would go ahead. */
  refuseNow(): ShardingError | undefined {
    if (!this.refusesNow()) {
      return undefined;
    }
    this.#refused++;
    return this.#refusal();
  }

  /** Whether a connection attempt would be refused now, without counting one. */
  refusesNow(): boolean {
    const settings = this.#settings;
    if (!settings || this.#state === 'closed') {
      return false;
    }
    const now = this.#now();
    return this.#state === 'open' ? now < this.#retryAt : this.#probing >= settings.halfOpenProbes && now < this.#retryAt;
  }

  /** Asks to make a connection attempt. A probe must be reported back with {@link succeeded} or {@link failed}. */
  admit(): Admission {
    const settings = this.#settings;
    if (!settings || this.#state === 'closed') {
      return PASS;
    }
    const now = this.#now();
    if (now >= this.#retryAt) {
      // The cool-down is over (or a probe has hung for a whole cool-down): let a probe through, and the next one only
      // after another cool-down.
      this.#retryAt = now + settings.coolDownMs;
      this.#probing = 0;
      this.#transition('half-open');
    }
    if (this.#state === 'half-open' && this.#probing < settings.halfOpenProbes) {
      this.#probing++;
      return PROBE;
    }
    this.#refused++;
    return { refused: this.#refusal() };
  }

  /** A connection was made (or the server answered): the shard is reachable. */
  succeeded(probe: boolean): void {
    if (probe) {
      this.#probing = Math.max(0, this.#probing - 1);
    }
    this.#consecutive = 0;
    if (this.#state !== 'closed') {
      this.#transition('closed');
    }
  }

  /** A connection attempt failed because the shard could not be reached. */
  failed(error: unknown, probe: boolean): void {
    const now = this.#now();
    if (probe) {
      this.#probing = Math.max(0, this.#probing - 1);
    }
    this.#consecutive++;
    this.#failures++;
    this.#lastError = infoOf(error, now);
    this.#lastCause = error;
    const settings = this.#settings;
    if (!settings) {
      return;
    }
    if (this.#state === 'half-open' || (this.#state === 'closed' && this.#consecutive >= settings.failureThreshold)) {
      this.#retryAt = now + settings.coolDownMs;
      this.#openedAt = now;
      this.#opened++;
      this.#transition('open');
    }
  }

  /** A snapshot for the application. */
  health(): ShardHealth {
    return Object.freeze({
      shard: this.shard,
      state: this.#state,
      consecutiveFailures: this.#consecutive,
      failures: this.#failures,
      refused: this.#refused,
      opened: this.#opened,
      lastError: this.#lastError,
      openedAt: this.#openedAt === undefined ? undefined : new Date(this.#openedAt),
      retryAt: this.#state === 'closed' ? undefined : new Date(this.#retryAt),
    });
  }

  /** The error an attempt refused by the open circuit fails with. */
  #refusal(): ShardingError {
    const last = this.#lastError;
    const reason =
      `its circuit breaker is ${this.#state} after ${this.#consecutive} connection failures in a row` +
      `${last ? ` (last: ${last.message})` : ''}; the next attempt is allowed at ${new Date(this.#retryAt).toISOString()}`;
    return ShardingError.shardUnavailable(this.shard, this.#lastCause, reason);
  }

  #transition(to: CircuitState): void {
    const from = this.#state;
    this.#state = to;
    const listener = this.#settings ? this.#settings.onStateChange : undefined;
    if (listener) {
      try {
        listener({ shard: this.shard, from, to, health: this.health() });
      } catch {
        // A listener's failure must not fail the connection attempt that happened to report the change.
      }
    }
  }
}

function infoOf(error: unknown, now: number): ShardFailureInfo {
  const { message, code } = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as { message?: unknown; code?: unknown };
  return Object.freeze({
    message: redact(typeof message === 'string' ? message : String(error)),
    code: typeof code === 'string' ? code : undefined,
    at: new Date(now),
  });
}
