/**
 * ClientConnection: the client's socket during negotiation and authentication. Reads whole frames
 * (awaitable), writes backend messages, upgrades to TLS, and hands the socket plus any unread bytes
 * to the relay. Knows nothing of the phase order.
 */

import net from 'node:net';
import tls from 'node:tls';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { recordVerification } from '../tls/peer-certificate.ts';
import { encodeErrorResponse } from '../wire/backend.ts';
import { FrameReader, type TypedMessage } from '../wire/frame-reader.ts';
import { POSTGRESQL_ALPN } from '../wire/limits.ts';

/** The client went away before the session started; nothing is sent back. */
export class ClientGone extends Error {
  override readonly name = 'ClientGone';
  /** True when pgward closed the connection itself (a timeout, a shutdown), not the client. */
  readonly byPgward: boolean;

  constructor(message: string, byPgward = false) {
    super(message);
    this.byPgward = byPgward;
  }
}

/** Stands in for a socket handed to the relay: already destroyed, so late calls do nothing. */
const RELEASED = new net.Socket().destroy();

/** A client socket before the relay starts. */
export class ClientConnection {
  socket: net.Socket;
  #reader: FrameReader;
  readonly #maxMessageLength: number;
  #waiter: (() => void) | null = null;
  #ended: Error | null = null;
  readonly #onData = (chunk: Buffer) => {
    this.#reader.push(chunk);
    // Stop reading while a whole message is buffered beyond the limit: the peer must wait for us.
    if (this.#reader.bufferedLength > this.#maxMessageLength) this.socket.pause();
    this.#wake();
  };
  readonly #onEnd = () => this.#finish(new ClientGone('client closed the connection'));
  readonly #onError = (error: Error) => this.#finish(new ClientGone(`client socket error: ${error.message}`));

  constructor(socket: net.Socket, maxMessageLength: number) {
    this.socket = socket;
    this.#maxMessageLength = maxMessageLength;
    this.#reader = new FrameReader(maxMessageLength);
    this.#attach();
  }

  /** True once the socket is TLS (SSLRequest or direct). */
  get tls(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  #attach(): void {
    this.socket
      .on('data', this.#onData)
      .on('end', this.#onEnd)
      .on('close', this.#onEnd)
      .on('error', this.#onError);
  }

  #detach(): void {
    this.socket
      .off('data', this.#onData)
      .off('end', this.#onEnd)
      .off('close', this.#onEnd)
      .off('error', this.#onError);
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  #finish(reason: Error): void {
    this.#ended ??= reason;
    this.#wake();
  }

  async #next<T>(read: () => T | null): Promise<T> {
    for (;;) {
      const frame = read();
      if (frame !== null) return frame;
      if (this.#ended) throw this.#ended;
      this.socket.resume();
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }

  /** Waits for the first byte and returns it without consuming it (direct TLS detection). */
  peekFirstByte(): Promise<number> {
    return this.#next(() => this.#reader.peekByte() ?? null);
  }

  /** The next startup packet body (throws PgError on a bad length, ClientGone on disconnect). */
  nextStartupPacket(): Promise<Buffer> {
    return this.#next(() => this.#reader.readStartupPacket());
  }

  /**
   * The next typed message. With `allowed`, a message of another type is refused as soon as its type
   * byte arrives, before its length is even read (as PostgreSQL does during authentication).
   */
  nextMessage(allowed?: readonly number[], maxLength?: number): Promise<TypedMessage> {
    return this.#next(() => {
      const type = this.#reader.peekByte();
      if (allowed && type !== undefined && !allowed.includes(type)) {
        throw new PgError(SqlState.ProtocolViolation, `expected password response, got message type ${type}`);
      }
      const length = this.#reader.peekLength();
      if (maxLength !== undefined && length !== undefined && length > maxLength) {
        throw new PgError(SqlState.ProtocolViolation, 'invalid message length', {
          logMessage: `authentication message of ${length} bytes, at most ${maxLength} accepted here`,
        });
      }
      return this.#reader.readMessage();
    });
  }

  /** Bytes received but not yet read. */
  get bufferedLength(): number {
    return this.#reader.bufferedLength;
  }

  /** Writes bytes to the client. */
  write(data: Buffer | Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /**
   * Wraps the socket in server-side TLS, re-feeding bytes already read (direct TLS starts with the
   * ClientHello). Resolves once the handshake completes; rejects with ClientGone if it fails.
   * With `requireAlpn`, a handshake without ALPN `postgresql` is refused (direct TLS).
   */
  async startTls(
    context: tls.SecureContext,
    options: { requireAlpn: boolean; requestCert: boolean },
  ): Promise<void> {
    const { requireAlpn } = options;
    this.#detach();
    this.socket.pause();
    const pending = this.#reader.takeRemaining();
    if (pending.length > 0) this.socket.unshift(pending);
    const secure = new tls.TLSSocket(this.socket, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: [POSTGRESQL_ALPN],
      // Verified, never required here: the session reads `authorized` and the rule decides.
      requestCert: options.requestCert,
      rejectUnauthorized: false,
    });
    secure.on('error', () => {});
    // The handshake ends in 'secure', or the peer hangs up / fails it, or pgward gives up (timeout).
    const failed = await new Promise<string | null>((resolve) => {
      secure.once('secure', () => resolve(null));
      secure.once('error', (error) => resolve(`TLS handshake failed: ${error.message}`));
      secure.once('close', () => resolve('client closed the connection during the TLS handshake'));
      this.#waiter = () => resolve(this.#ended?.message ?? 'connection closed by pgward');
    });
    this.#waiter = null;
    if (failed === null && requireAlpn && secure.alpnProtocol !== POSTGRESQL_ALPN) {
      secure.destroy();
      throw new ClientGone(
        'received direct SSL connection request without ALPN protocol negotiation extension',
      );
    }
    if (failed !== null || this.#ended) {
      secure.destroy();
      throw new ClientGone(failed ?? 'connection closed by pgward');
    }
    if (options.requestCert) recordVerification(secure);
    this.socket = secure;
    this.#reader = new FrameReader(this.#maxMessageLength);
    this.#attach();
  }

  /**
   * Sends an ErrorResponse (a PgError, or raw bytes relayed from upstream) and closes the connection.
   * A read in progress ends with ClientGone.
   */
  fail(error: PgError | Buffer): void {
    this.#detach();
    this.socket.on('error', () => {});
    if (!this.socket.destroyed) this.socket.end(Buffer.isBuffer(error) ? error : encodeErrorResponse(error));
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.#finish(new ClientGone('connection closed by pgward', true));
  }

  /** Closes the connection without a word (cancel requests, vanished clients). */
  close(): void {
    this.#detach();
    this.socket.on('error', () => {});
    this.socket.destroy();
  }

  /**
   * Stops reading and gives the relay the socket and every unread byte. The connection keeps no
   * reference to the socket afterwards (an idle session should hold only what the relay needs).
   */
  release(): { socket: net.Socket; pending: Buffer } {
    this.#detach();
    const socket = this.socket;
    socket.pause();
    this.socket = RELEASED;
    return { socket, pending: this.#reader.takeRemaining() };
  }
}
