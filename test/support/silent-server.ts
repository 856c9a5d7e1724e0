import { createServer, type Socket } from 'node:net';

/**
 * Fault injection for a hung host or a black-holing proxy: a loopback TCP server that accepts every connection and
 * never answers. A PostgreSQL shard pointed at it waits for its connect timeout.
 */
export interface SilentServer {
  readonly port: number;
  /** Connections accepted so far: whether a call touched the network. */
  readonly accepted: number;
  /** A PostgreSQL connection URL to it. */
  url(database: string): string;
  close(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer(socket => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    get accepted() {
      return accepted;
    },
    url: database => `postgresql://app@127.0.0.1:${port}/${database}`,
    async close() {
      sockets.forEach(socket => socket.destroy());
      await new Promise(resolve => server.close(resolve));
    },
  };
}
