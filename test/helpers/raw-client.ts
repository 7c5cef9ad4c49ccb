/**
 * A raw socket client for protocol tests: sends exact bytes, reads back backend messages, and reports
 * when the server closes. Decodes with pg-protocol's client parser (independent of pgward's code).
 */

import net from 'node:net';
import { Parser } from 'pg-protocol/dist/parser.js';

/** A decoded backend message. */
export type BackendMessage = Record<string, unknown> & { name: string };

/** Builds a startup packet with any version word and parameters. */
export function startupPacket(major: number, minor: number, parameters: Record<string, string>): Buffer {
  const text = Buffer.from(
    `${Object.entries(parameters)
      .map(([k, v]) => `${k}\0${v}\0`)
      .join('')}\0`,
  );
  const out = Buffer.alloc(8 + text.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE((major << 16) | minor, 4);
  text.copy(out, 8);
  return out;
}

/** An SSLRequest, GSSENCRequest or CancelRequest packet. */
export function requestPacket(code: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(8 + extra.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(code, 4);
  extra.copy(out, 8);
  return out;
}

/** A typed frontend message whose body is one null-terminated string. */
function stringMessage(type: 'p' | 'Q', text: string): Buffer {
  const body = Buffer.from(`${text}\0`);
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** A PasswordMessage. */
export function passwordMessage(password: string): Buffer {
  return stringMessage('p', password);
}

/** A simple-protocol Query message. */
export function queryMessage(sql: string): Buffer {
  return stringMessage('Q', sql);
}

/** A raw connection. */
export class RawClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.received = Buffer.concat([this.received, chunk]);
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Wraps an already connected socket (e.g. a TLS socket). */
  static wrap(socket: net.Socket): RawClient {
    return new RawClient(socket);
  }

  /** Connects to host:port. */
  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Decodes everything received so far as backend messages (skipping leading one-byte answers). */
  messages(skip = 0): BackendMessage[] {
    const out: BackendMessage[] = [];
    new Parser().parse(this.received.subarray(skip), (message) =>
      out.push(message as unknown as BackendMessage),
    );
    return out;
  }

  /** Waits until `bytes` bytes arrived (or the socket closed / timed out). */
  async waitForBytes(bytes: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < bytes && !this.socket.closed && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Waits until a message named `name` arrived. */
  async waitForMessage(name: string, skip = 0, timeoutMs = 5000): Promise<BackendMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages(skip).find((m) => m.name === name);
      if (found || this.socket.closed || Date.now() > deadline) return found;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Resolves true if the server closes the socket within the time. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    return Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs)),
    ]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
