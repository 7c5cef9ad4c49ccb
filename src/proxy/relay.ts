/**
 * Relay: moves raw bytes between an authenticated client and its upstream backend, both ways, with
 * backpressure. Watches upstream message boundaries only so that pgward can end a session with an
 * ErrorResponse of its own without cutting a message in half.
 */

import type net from 'node:net';
import type { Logger } from 'pino';
import { MessageTracker } from '../wire/message-tracker.ts';
import { RelaySocket } from './relay-socket.ts';

/** Grace period for a terminating session to reach a message boundary. */
const TERMINATE_GRACE_MS = 2000;

/** A running relay between two sockets. */
export class Relay {
  #client: net.Socket;
  #upstream: net.Socket;
  /** The writing side of each socket, set by start(). */
  #toClient: RelaySocket | null = null;
  #toUpstream: RelaySocket | null = null;
  readonly #log: Logger;
  readonly #upstreamLost: Buffer;
  readonly #tracker = new MessageTracker();
  #closing: Buffer | null = null;
  #closed = false;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;
  /** Bytes relayed in each direction, for the session-end log line. */
  bytesToUpstream = 0;
  bytesToClient = 0;

  /** @param upstreamLost ErrorResponse sent to the client if the upstream vanishes without one. */
  constructor(client: net.Socket, upstream: net.Socket, log: Logger, upstreamLost: Buffer) {
    this.#client = client;
    this.#upstream = upstream;
    this.#log = log;
    this.#upstreamLost = upstreamLost;
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Resolves when both sockets are closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /**
   * Starts relaying. `fromClient` and `fromUpstream` are bytes already read from each side before the
   * relay took over.
   */
  start(fromClient: Buffer, fromUpstream: Buffer): void {
    const toClient = new RelaySocket(this.#client, (chunk) => this.#fromClient(chunk));
    const toUpstream = new RelaySocket(this.#upstream, (chunk) => this.#fromUpstream(chunk));
    this.#toClient = toClient;
    this.#toUpstream = toUpstream;
    const client = toClient.socket;
    const upstream = toUpstream.socket;
    this.#client = client;
    this.#upstream = upstream;
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());
    client.on('close', () => this.#close('client closed'));
    upstream.on('close', () => this.#close('upstream closed'));
    client.on('error', (error) => this.#log.debug({ err: error.message }, 'client socket error'));
    upstream.on('error', (error) => this.#log.warn({ err: error.message }, 'upstream socket error'));
    if (fromClient.length > 0) this.#fromClient(fromClient);
    if (fromUpstream.length > 0) this.#fromUpstream(fromUpstream);
  }

  /** `chunk` may be a view of the shared read buffer: it is written or copied before returning. */
  #fromClient(chunk: Buffer): void {
    this.bytesToUpstream += chunk.length;
    if (!this.#toUpstream?.write(chunk)) this.#client.pause();
  }

  /** `chunk` may be a view of the shared read buffer: it is written or copied before returning. */
  #fromUpstream(chunk: Buffer): void {
    this.bytesToClient += chunk.length;
    const boundary = this.#tracker.feed(chunk);
    if (this.#closing !== null && boundary >= 0) {
      this.#toClient?.write(chunk.subarray(0, boundary));
      this.#endWith(this.#closing);
      return;
    }
    if (!this.#toClient?.write(chunk)) this.#upstream.pause();
  }

  #endWith(message: Buffer | null): void {
    this.#upstream.pause();
    this.#upstream.destroy();
    if (message) this.#client.end(message);
    else this.#client.end();
    setTimeout(() => this.#client.destroy(), TERMINATE_GRACE_MS).unref();
  }

  /**
   * Ends the session with `message` (an ErrorResponse) at the next upstream message boundary, or
   * closes both sockets after a grace period if none comes.
   */
  terminate(message: Buffer): void {
    if (this.#closed || this.#closing !== null) return;
    if (this.#tracker.atBoundary) {
      this.#endWith(message);
      return;
    }
    this.#closing = message;
    setTimeout(() => this.#endWith(null), TERMINATE_GRACE_MS).unref();
  }

  #close(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#log.debug({ why }, 'relay closing');
    if (why === 'upstream closed') {
      // A backend that died without a FATAL of its own leaves the client guessing: say what happened.
      const silent = this.#tracker.atBoundary && this.#tracker.lastType !== 0x45; /* 'E' */
      if (silent && this.#closing === null) this.#client.end(this.#upstreamLost);
      else this.#client.end();
      setTimeout(() => this.#client.destroy(), TERMINATE_GRACE_MS).unref();
    } else {
      this.#upstream.end();
      setTimeout(() => this.#upstream.destroy(), TERMINATE_GRACE_MS).unref();
    }
    const bothClosed = () => this.#client.closed && this.#upstream.closed;
    const check = () => {
      if (bothClosed()) this.#resolveDone();
    };
    this.#client.once('close', check);
    this.#upstream.once('close', check);
    check();
  }
}
