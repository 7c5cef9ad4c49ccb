/**
 * `host:port` listen addresses as written in pgward.yaml (`127.0.0.1:6432`, `[::1]:6432`, `:6432`).
 */

import { type AddressInfo, isIP, type Server } from 'node:net';

/** A host and port to bind. Port 0 asks the OS for a free port (tests). */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `host:port`; returns an error message instead when the text is not one. */
export function parseListenAddress(text: string): ListenAddress | string {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return `expected host:port (IPv6 in brackets, e.g. [::1]:6432), got "${text}"`;
  const host = match[1] ?? (match[2] || '127.0.0.1');
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is out of range (0..65535)`;
  if (match[1] !== undefined && isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  return { host, port };
}

/** Formats an address for messages and psql commands. */
export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Binds a server (net or http) to an address; resolves with the address bound (port 0 resolved). */
export async function bindServer(server: Server, address: ListenAddress): Promise<ListenAddress> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { host: address.host, port: (server.address() as AddressInfo).port };
}
