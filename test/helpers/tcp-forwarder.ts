/**
 * A TCP forwarder between pgward and its upstream, so a test can cut the upstream connection the way
 * a crash or network failure would (no FATAL from PostgreSQL first).
 */

import net from 'node:net';
import type { Test } from 'tap';

/** A running forwarder. */
export interface TcpForwarder {
  port: number;
  /** Destroys every forwarded connection at once. */
  cutAll(): void;
}

/** Forwards 127.0.0.1:<port> to target; closed at teardown. */
export async function startTcpForwarder(t: Test, targetPort: number): Promise<TcpForwarder> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port: targetPort });
    const pair: [net.Socket, net.Socket] = [inbound, outbound];
    pairs.add(pair);
    inbound.pipe(outbound).pipe(inbound);
    const drop = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    port: (server.address() as net.AddressInfo).port,
    cutAll() {
      for (const [inbound, outbound] of pairs) {
        inbound.resetAndDestroy();
        outbound.resetAndDestroy();
      }
      pairs.clear();
    },
  };
}
