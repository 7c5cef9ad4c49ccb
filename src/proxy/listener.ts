/**
 * PgListener: accepts client connections on the configured addresses, enforces the client limit,
 * runs a Session per connection and ends them all on shutdown.
 */

import net from 'node:net';
import { bindServer, formatListenAddress, type ListenAddress } from '../config/listen-address.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { encodeErrorResponse } from '../wire/backend.ts';
import type { Runtime } from './runtime.ts';
import { Session } from './session.ts';

const TOO_MANY_CLIENTS = encodeErrorResponse(
  new PgError(SqlState.TooManyConnections, 'sorry, too many clients already'),
);

/**
 * Sends 53300 and closes. A function of its own so that no closure in `#accept` captures the socket:
 * the session's `.finally` callback keeps that function's context alive for the whole session.
 */
function refuse(socket: net.Socket): void {
  socket.end(TOO_MANY_CLIENTS);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The PostgreSQL-protocol front door. */
export class PgListener {
  readonly #runtime: Runtime;
  readonly #servers: net.Server[] = [];
  readonly #sessions = new Set<Session>();
  #closing = false;

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
  }

  /** Binds every address; resolves with the addresses actually bound (port 0 resolved). */
  async listen(addresses: readonly ListenAddress[]): Promise<ListenAddress[]> {
    const bound: ListenAddress[] = [];
    for (const address of addresses) {
      const server = net.createServer({ noDelay: true }, (socket) => this.#accept(socket));
      server.on('error', (error) => this.#runtime.log.error({ err: error }, 'listener error'));
      const actual = await bindServer(server, address);
      bound.push(actual);
      this.#servers.push(server);
      this.#runtime.log.info({ address: formatListenAddress(actual) }, 'listening (pg)');
    }
    return bound;
  }

  #accept(socket: net.Socket): void {
    const metrics = this.#runtime.metrics;
    socket.on('error', () => {});
    if (this.#closing || this.#sessions.size >= this.#runtime.config.limits.maxClients) {
      metrics.connectionsRefused++;
      refuse(socket);
      return;
    }
    metrics.connectionsAccepted++;
    metrics.connectionsActive++;
    const session = new Session(socket, this.#runtime);
    this.#sessions.add(session);
    session.run().finally(() => {
      this.#sessions.delete(session);
      metrics.connectionsActive--;
    });
  }

  /** Stops accepting, ends every session with FATAL 57P01, and waits (up to `graceMs`) for them to close. */
  async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    const closed = Promise.all(
      this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    for (const session of this.#sessions) session.terminate();
    const deadline = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await Promise.race([
      closed,
      new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now()))),
    ]);
  }
}
