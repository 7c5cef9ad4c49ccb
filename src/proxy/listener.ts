/**
 * PgListener: accepts client connections on the configured addresses, enforces the client limit,
 * runs a Session per connection and ends them all on shutdown.
 */

import { chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
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

/** True if something accepts connections on the Unix socket path. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
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
      const server = net.createServer({ noDelay: true }, (socket) => this.#accept(socket, 'tcp'));
      server.on('error', (error) => this.#runtime.log.error({ err: error }, 'listener error'));
      const actual = await bindServer(server, address);
      bound.push(actual);
      this.#servers.push(server);
      this.#runtime.log.info({ address: formatListenAddress(actual) }, 'listening (pg)');
    }
    return bound;
  }

  /**
   * Also listens on the Unix socket `<dir>/.s.PGSQL.<port>`, where libpq looks for it
   * (`psql -h <dir> -p <port>`). A socket file left by a pgward that is gone is replaced; one that
   * still answers is an error. Resolves with the socket's path.
   */
  async listenUnix(dir: string, port: number): Promise<string> {
    const socketPath = path.join(dir, `.s.PGSQL.${port}`);
    if (await answers(socketPath)) throw new Error(`${socketPath} is in use by another server`);
    await unlink(socketPath).catch(() => {});
    const server = net.createServer((socket) => this.#accept(socket, 'local'));
    server.on('error', (error) => this.#runtime.log.error({ err: error }, 'listener error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject).listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Anyone on the machine may connect, as PostgreSQL's default unix_socket_permissions (0777).
    await chmod(socketPath, 0o777);
    this.#servers.push(server);
    this.#runtime.log.info({ address: socketPath }, 'listening (pg, unix socket)');
    return socketPath;
  }

  #accept(socket: net.Socket, transport: 'tcp' | 'local'): void {
    const metrics = this.#runtime.metrics;
    socket.on('error', () => {});
    const ticket =
      this.#closing || this.#sessions.size >= this.#runtime.config.limits.maxClients
        ? null
        : this.#runtime.pendingAuth.tryEnter();
    if (!ticket) {
      metrics.connectionsRefused++;
      refuse(socket);
      return;
    }
    metrics.connectionsAccepted++;
    metrics.connectionsActive++;
    const session = new Session(socket, this.#runtime, transport, ticket);
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
