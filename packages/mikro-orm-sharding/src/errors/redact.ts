// Secrets never leave the library: every ShardingError passes its message, value and cause through here.

/**
 * `scheme://user:password@` (a password may hold `@`: the userinfo ends at the last `@` before the path). Every part
 * is bounded, so that a megabyte of input (a shard id, say) is scanned in linear time.
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]{0,31}:\/\/[^\s/:@]{0,256}:)[^\s/]{0,1024}@/gi;
/** `?password=...` / `&sslpassword=...` in a connection string's query. */
const QUERY_PASSWORD = /([?&](?:ssl)?password=)[^&\s#]*/gi;
const MASK = '***';

/** Passwords from the options of every fleet initialised in this process, longest first (a password may contain another). */
let known: string[] = [];

/** Remembers the passwords in one shard's options (`password`, the password of `clientUrl`, the same for each replica). */
export function rememberSecrets(options: object): void {
  const found = new Set(known);
  const visit = (value: unknown) => {
    if (value === null || typeof value !== 'object') {
      return;
    }
    const { password, clientUrl, replicas } = value as { password?: unknown; clientUrl?: unknown; replicas?: unknown };
    if (typeof password === 'string' && password !== '') {
      found.add(password);
    }
    if (typeof clientUrl === 'string') {
      const fromUrl = passwordOf(clientUrl);
      if (fromUrl) {
        found.add(fromUrl).add(decodeURIComponentSafe(fromUrl));
      }
    }
    if (Array.isArray(replicas)) {
      replicas.forEach(visit);
    }
  };
  visit(options);
  known = [...found].sort((a, b) => b.length - a.length);
}

function passwordOf(url: string): string | undefined {
  const match = /^[a-z][a-z0-9+.-]{0,31}:\/\/[^\s/:@]{0,256}:([^\s/]{0,1024})@/i.exec(url);
  return match?.[1] || undefined;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The text with URL passwords and every remembered password masked. */
export function redact(text: string): string {
  let out = text.replace(URL_PASSWORD, `$1${MASK}@`).replace(QUERY_PASSWORD, `$1${MASK}`);
  for (const secret of known) {
    if (out.includes(secret)) {
      out = out.split(secret).join(MASK);
    }
  }
  return out;
}

/**
 * A value safe to keep on an error: strings redacted, plain objects and arrays (options, say) copied with their
 * secrets masked. Anything else, and anything with nothing to mask, is returned as it is.
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    return redact(value);
  }
  if (value === null || typeof value !== 'object' || depth > 3 || !isPlain(value)) {
    return value;
  }
  let changed = false;
  const clean = (key: string, item: unknown) => {
    const out = /password/i.test(key) && item !== undefined && item !== null ? MASK : redactValue(item, depth + 1);
    changed ||= out !== item;
    return out;
  };
  const copy = Array.isArray(value)
    ? value.map((item, i) => clean(String(i), item))
    : Object.fromEntries(Object.entries(value).map(([key, item]) => [key, clean(key, item)]));
  return changed ? copy : value;
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === Array.prototype || proto === null;
}

/**
 * Masks secrets inside an error in place (its message, stack and other string fields such as Node's `input` of an
 * invalid URL, then its own cause and aggregated errors): the error keeps its class for `instanceof`.
 */
export function redactError(error: unknown, depth = 0): void {
  if (error === null || typeof error !== 'object' || depth > 5) {
    return;
  }
  for (const key of Reflect.ownKeys(error)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(error, key);
    // `stack` is an accessor on Node 24; any other accessor is left alone (reading it could run code).
    if (!descriptor || (!('value' in descriptor) && key !== 'stack')) {
      continue;
    }
    const value: unknown = 'value' in descriptor ? descriptor.value : Reflect.get(error, key);
    if (typeof value === 'string') {
      const clean = redact(value);
      if (clean !== value) {
        Reflect.set(error, key, clean);
      }
    } else if (key === 'cause' || (key === 'errors' && Array.isArray(value))) {
      (Array.isArray(value) ? value : [value]).forEach(inner => redactError(inner, depth + 1));
    }
  }
}
