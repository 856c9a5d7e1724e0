/**
 * A pooled connection that breaks while checked out can be lost for good. Kysely releases a transaction's connection
 * only after its BEGIN, COMMIT or ROLLBACK succeeded, and on a connection the server dropped each of those fails:
 * the `pg` client stays checked out. Every transaction cut off by an outage so takes one slot of the shard's pool
 * for ever; once all are gone the shard never answers again (each query waits `connectionTimeoutMillis` for a
 * connection), even after its server is back, and `close()` waits for them endlessly.
 *
 * So a checked-out client that reports an error (`pg` emits `'error'` once a client is unusable) and is still
 * checked out a moment later is given back to its pool as broken, which discards it. Only `pg-pool`'s public events
 * (`connect`, `acquire`, `release`, `remove`) and `client.release(error)` are used.
 */

/** How long a broken client may stay checked out before it is taken back: its holder normally releases it at once. */
export const RECLAIM_AFTER_MS = 250;

interface Emitter {
  on(event: string, listener: (...args: any[]) => void): unknown;
}

interface PooledClient extends Emitter {
  release?: (error?: unknown) => void;
}

/** Makes a `pg` Pool take back the clients that broke while checked out and were not released. */
export function reclaimBrokenClients(pool: object, afterMs = RECLAIM_AFTER_MS): void {
  const events = pool as Partial<Emitter>;
  if (typeof events.on !== 'function') {
    return;
  }
  const out = new Set<PooledClient>();
  events.on('acquire', (client: PooledClient) => out.add(client));
  events.on('release', (_error: unknown, client: PooledClient) => out.delete(client));
  events.on('remove', (client: PooledClient) => out.delete(client));
  events.on('connect', (client: PooledClient) => {
    client.on('error', (error: unknown) => {
      if (!out.has(client)) {
        return;
      }
      setTimeout(() => {
        if (!out.has(client)) {
          return;
        }
        const release = client.release;
        // Whoever held it may still release it later: that must not throw `pg-pool`'s double-release error.
        client.release = () => undefined;
        try {
          release?.call(client, error);
        } catch {
          // Already released after all.
        }
      }, afterMs).unref();
    });
  });
}
