/**
 * A PostgreSQL 18 OAUTHBEARER client for tests (no libpq here ships the oauth module): `net`/`tls`
 * plus pg-protocol's serializer and parser, independent of pgward's code. Two real clients' patterns:
 *
 * - libpq 18: connect without a token (`auth=` empty: discovery), read the error challenge, check its
 *   discovery URL is byte-identical to `oauth_issuer` + /.well-known/openid-configuration, send the
 *   kvsep, take the FATAL; fetch the discovery document (its `issuer` must equal `oauth_issuer`), get a
 *   token for the advertised scope, and connect again with it.
 * - pgx 5.9: send the token in the first message.
 */

import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';

/** A decoded backend message (pg-protocol's shape). */
export type Message = Record<string, unknown> & { name: string };

/** Where and as whom to connect. */
export interface Target {
  port: number;
  host?: string;
  user: string;
  database: string;
  /** Negotiate TLS (SSLRequest) first; the server certificate is not verified. Default true. */
  tls?: boolean;
}

/** One connection, read message by message. */
export class WireClient {
  readonly #socket: net.Socket;
  readonly #queue: Message[] = [];
  #waiter: (() => void) | null = null;
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const parser = new Parser();
    socket.on('data', (chunk: Buffer) => {
      parser.parse(chunk, (message) => this.#queue.push(message as unknown as Message));
      this.#wake();
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  /** Connects, negotiates TLS if asked, and sends the StartupMessage. */
  static async connect(target: Target): Promise<WireClient> {
    const host = target.host ?? '127.0.0.1';
    let socket: net.Socket = await new Promise((resolve, reject) => {
      const raw = net.connect({ host, port: target.port }, () => resolve(raw));
      raw.once('error', reject);
    });
    socket.setNoDelay(true);
    if (target.tls ?? true) {
      socket.write(serialize.requestSsl());
      const answer: Buffer = await new Promise((resolve) => socket.once('data', resolve));
      if (answer.toString('latin1') !== 'S') throw new Error('server refused TLS');
      socket = await new Promise((resolve, reject) => {
        const secure = tls.connect({ socket, rejectUnauthorized: false, servername: 'localhost' }, () =>
          resolve(secure),
        );
        secure.once('error', reject);
      });
    }
    const client = new WireClient(socket);
    client.send(serialize.startup({ user: target.user, database: target.database }));
    return client;
  }

  send(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  /** The next message; `{name: 'closed'}` once the server has closed and nothing is left. */
  async next(timeoutMs = 10_000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#queue.shift();
      if (message) return message;
      if (this.#closed) return { name: 'closed' };
      const left = deadline - Date.now();
      if (left <= 0) return { name: 'timeout' };
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, left);
      });
    }
  }

  /** Skips ParameterStatus, BackendKeyData and notices; the next other message. */
  async nextSignificant(): Promise<Message> {
    for (;;) {
      const message = await this.next();
      if (!['parameterStatus', 'backendKeyData', 'notice'].includes(message.name)) return message;
    }
  }

  /** Runs one simple query; resolves with the first column of each row, or the error. */
  async query(sql: string): Promise<string[] | Message> {
    this.send(serialize.query(sql));
    const rows: string[] = [];
    let error: Message | null = null;
    for (;;) {
      const message = await this.nextSignificant();
      if (message.name === 'dataRow') rows.push(String((message.fields as unknown[])[0]));
      else if (message.name === 'error') error = message;
      else if (message.name === 'readyForQuery') return error ?? rows;
      else if (message.name === 'closed' || message.name === 'timeout') return message;
    }
  }

  /** Whether the server has closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  end(): void {
    if (!this.#closed) this.#socket.end(serialize.end());
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** A 'p' message body as the client sends it (SASLInitialResponse or SASLResponse). */
function pMessage(body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write('p', 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** SASLInitialResponse: the mechanism and its data (null: no initial response, length -1). */
export function saslInitialResponse(mechanism: string, data: Buffer | string | null): Buffer {
  const name = Buffer.from(`${mechanism}\0`, 'utf8');
  const length = Buffer.alloc(4);
  if (data === null) {
    length.writeInt32BE(-1);
    return pMessage(Buffer.concat([name, length]));
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  length.writeInt32BE(bytes.length);
  return pMessage(Buffer.concat([name, length, bytes]));
}

/** SASLResponse: the data alone. */
export function saslResponse(data: Buffer | string): Buffer {
  return pMessage(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
}

/** The client initial response of RFC 7628: `n,,` ^A `auth=<auth>` ^A ^A. */
export function clientResponse(auth: string): string {
  return `n,,\x01auth=${auth}\x01\x01`;
}

/** How a login attempt ended. */
export type Outcome =
  | { ok: true; client: WireClient; messages: string[] }
  | { ok: false; error: Message | null; messages: string[]; challenge: Record<string, unknown> | null };

/**
 * Sends an OAUTHBEARER initial response with `auth` and follows the exchange: on the error challenge
 * it answers the kvsep, like libpq. `messages` are the names seen, in order.
 */
export async function oauthbearer(target: Target, auth: string): Promise<Outcome> {
  const client = await WireClient.connect(target);
  const messages: string[] = [];
  const first = await client.nextSignificant();
  messages.push(first.name);
  if (first.name !== 'authenticationSASL') {
    client.destroy();
    return { ok: false, error: first.name === 'error' ? first : null, messages, challenge: null };
  }
  client.send(saslInitialResponse('OAUTHBEARER', clientResponse(auth)));
  let challenge: Record<string, unknown> | null = null;
  for (;;) {
    const message = await client.nextSignificant();
    messages.push(message.name);
    if (message.name === 'authenticationSASLContinue') {
      challenge = JSON.parse(String(message.data)) as Record<string, unknown>;
      client.send(saslResponse('\x01'));
      continue;
    }
    if (message.name === 'readyForQuery') return { ok: true, client, messages };
    if (message.name === 'authenticationOk') continue;
    client.destroy();
    return { ok: false, error: message.name === 'error' ? message : null, messages, challenge };
  }
}

/** What libpq 18 is configured with. */
export interface LibpqOauth {
  /** `oauth_issuer`: compared byte for byte with what the server advertises. */
  issuer: string;
  /** PGOAUTHDEBUG=UNSAFE: allow an http issuer (libpq refuses one otherwise; the test IdP is http). */
  unsafeHttp?: boolean;
  /** Gets a token from the discovered token endpoint for the advertised scope (the OAuth flow). */
  getToken(tokenEndpoint: string, scope: string): Promise<string>;
}

/** libpq's pattern: discovery, then a second connection with the token. */
export async function libpqLogin(target: Target, oauth: LibpqOauth): Promise<Outcome> {
  const discovery = await oauthbearer(target, '');
  if (discovery.ok) return discovery;
  const challenge = discovery.challenge;
  if (!challenge) return discovery;
  const url = String(challenge['openid-configuration']);
  if (!url.startsWith('https:') && !oauth.unsafeHttp)
    throw new Error(`libpq refuses the non-https discovery URL ${url} (PGOAUTHDEBUG=UNSAFE allows it)`);
  if (url !== `${oauth.issuer}/.well-known/openid-configuration`)
    throw new Error(`server's discovery URL ${url} does not match oauth_issuer ${oauth.issuer}`);
  const document = (await (await fetch(url)).json()) as { issuer: string; token_endpoint: string };
  if (document.issuer !== oauth.issuer)
    throw new Error(`discovery document issuer ${document.issuer} is not ${oauth.issuer}`);
  const token = await oauth.getToken(document.token_endpoint, String(challenge.scope));
  return oauthbearer(target, `Bearer ${token}`);
}
