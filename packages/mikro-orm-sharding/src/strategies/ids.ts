import { describe, ShardingError } from '../errors/errors.ts';

/** Options of {@link idGenerator}. */
export interface IdGeneratorOptions {
  /**
   * This process's node id: 0 ... 2^`nodeBits` - 1, different in every process that makes ids at the same time
   * (a worker index, a pod ordinal). Two processes with one node id can make the same id.
   */
  readonly node: number;
  /**
   * Bits for the bucket: 2^`bucketBits` buckets, which must be the bucket count of the hash strategy the ids route
   * by.
   * @default 10 (1024 buckets, hash()'s default)
   */
  readonly bucketBits?: number;
  /**
   * Bits for the node id: 2^`nodeBits` processes. Bucket, node and sequence share 21 bits; the sequence gets what is
   * left (at least 1 bit).
   * @default 6 (64 nodes, leaving 5 sequence bits: 32 ids per millisecond and process, more borrow the next millisecond)
   */
  readonly nodeBits?: number;
  /**
   * The clock, in milliseconds since 1970 (for tests).
   * @default Date.now
   */
  readonly now?: () => number;
}

/** What an id holds. */
export interface DecodedId {
  /** When it was made (to the millisecond; later when the process made more ids than its sequence holds). */
  readonly time: Date;
  readonly sequence: number;
  readonly node: number;
  readonly bucket: number;
}

const LOW_BITS = 21;
const TIME_LIMIT = 2 ** 42;

/**
 * Makes 64-bit ids that carry their bucket, so that a lookup by id goes to one shard with no directory read:
 * `findOne(Order, id)` decodes the bucket and asks the hash strategy's bucket directory.
 *
 * Layout, from the top bit down: 0, 42 bits of milliseconds since 1970 (until 2109), the sequence, the node, the
 * bucket (21 bits for the last three). Ids are decimal strings of 19 digits from 1985 to 2109, so they sort as text
 * as they do as numbers; they increase in every process (a clock that goes back is waited out logically), and
 * processes with different node ids never make the same id.
 *
 * Store them with `Int64StringType` (`p.type(Int64StringType)`), which keeps all 64 bits on SQLite too.
 *
 * @example
 * ```ts
 * const ids = idGenerator({ node: Number(process.env.NODE_ID ?? 0) });
 * // id: p.type(Int64StringType).primary().onCreate(() => ids.next())
 * ```
 */
export function idGenerator(options: IdGeneratorOptions): IdGenerator {
  return new IdGenerator(options);
}

/** See {@link idGenerator}. */
export class IdGenerator {
  readonly #node: number;
  readonly #bucketBits: number;
  readonly #nodeBits: number;
  readonly #sequenceBits: number;
  readonly #now: () => number;
  #time = 0;
  #sequence = 0;
  #nextBucket: number;

  constructor(options: IdGeneratorOptions) {
    if (options === null || typeof options !== 'object') {
      throw ShardingError.invalidOptions('idGenerator() takes an options object: idGenerator({ node: 0 }).', options);
    }
    const { node, bucketBits = 10, nodeBits = 6, now = Date.now } = options;
    const bits = (name: string, value: number, max: number) => {
      if (!Number.isInteger(value) || value < 0 || value > max) {
        throw ShardingError.invalidOptions(`idGenerator() needs \`${name}\` to be a whole number from 0 to ${max}; got ${describe(value)}.`, value);
      }
    };
    bits('bucketBits', bucketBits, LOW_BITS - 1);
    bits('nodeBits', nodeBits, LOW_BITS - 1 - bucketBits);
    bits('node', node, 2 ** nodeBits - 1);
    this.#node = node;
    this.#bucketBits = bucketBits;
    this.#nodeBits = nodeBits;
    this.#sequenceBits = LOW_BITS - bucketBits - nodeBits;
    this.#now = now;
    // Processes start at different buckets, so that ids made without a bucket spread from the first one.
    this.#nextBucket = (node * 7919) % this.buckets;
  }

  /** How many buckets the ids carry: 2^`bucketBits`. */
  get buckets(): number {
    return 2 ** this.#bucketBits;
  }

  /**
   * A new id in `bucket` (the bucket of the row's shard key: `strategy.bucketOf(tenantId)`, or a parent's
   * `ids.bucketOf(order.id)`); without one, the buckets are taken in turn, which spreads rows keyed by their own id
   * evenly.
   */
  next(bucket?: number): string {
    if (bucket === undefined) {
      bucket = this.#nextBucket;
      this.#nextBucket = (bucket + 1) % this.buckets;
    } else if (!Number.isInteger(bucket) || bucket < 0 || bucket >= this.buckets) {
      throw ShardingError.invalidOptions(`ids.next() got bucket ${describe(bucket)}; buckets are 0 ... ${this.buckets - 1}.`, bucket);
    }
    const now = this.#now();
    if (now > this.#time) {
      this.#time = now;
      this.#sequence = 0;
    } else if (++this.#sequence >= 2 ** this.#sequenceBits) {
      // More ids this millisecond than the sequence holds (or the clock went back): borrow the next millisecond.
      this.#time++;
      this.#sequence = 0;
    }
    if (this.#time >= TIME_LIMIT) {
      throw ShardingError.invalidOptions('idGenerator() ran out of time bits (after the year 2109), or the clock is far ahead.', this.#time);
    }
    const low = (this.#sequence * 2 ** this.#nodeBits + this.#node) * this.buckets + bucket;
    return String((BigInt(this.#time) << BigInt(LOW_BITS)) | BigInt(low));
  }

  /**
   * The bucket an id carries, read from its decimal digits without a bigint (it runs on every lookup by id);
   * undefined for a value that is not such an id.
   */
  bucketOf(id: unknown): number | undefined {
    const buckets = this.buckets;
    if (typeof id === 'number') {
      return Number.isSafeInteger(id) && id >= 0 ? id % buckets : undefined;
    }
    if (typeof id === 'bigint') {
      return id >= 0n && id < 2n ** 63n ? Number(id % BigInt(buckets)) : undefined;
    }
    if (typeof id !== 'string' || id.length === 0 || id.length > 19) {
      return undefined;
    }
    let remainder = 0;
    for (let i = 0; i < id.length; i++) {
      const digit = id.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) {
        return undefined;
      }
      remainder = (remainder * 10 + digit) % buckets;
    }
    return remainder;
  }

  /** What an id holds. Throws `INVALID_SHARD_KEY` for a value that is not a 64-bit id. */
  decode(id: string | bigint): DecodedId {
    let value: bigint;
    try {
      value = BigInt(id);
    } catch {
      value = -1n;
    }
    if (value < 0n || value >= 2n ** 63n) {
      throw ShardingError.invalidShardKey('ids.decode()', 'id', id, 'it is not a 64-bit id made by idGenerator()');
    }
    const low = Number(value & BigInt(2 ** LOW_BITS - 1));
    return {
      time: new Date(Number(value >> BigInt(LOW_BITS))),
      bucket: low % this.buckets,
      node: Math.floor(low / this.buckets) % 2 ** this.#nodeBits,
      sequence: Math.floor(low / this.buckets / 2 ** this.#nodeBits),
    };
  }
}
