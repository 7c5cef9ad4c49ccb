/**
 * The server side of a SCRAM-SHA-256(-PLUS) exchange (RFC 5802, RFC 7677) as PostgreSQL runs it
 * (src/backend/libpq/auth-scram.c): mechanism choice, client-first-message, server-first-message,
 * client-final-message with channel binding and proof check, server-final-message. Pure: strings in,
 * strings out; the method in ../scram-sha-256.ts drives it over the wire.
 *
 * Protocol errors carry PostgreSQL's SQLSTATEs and wording. A wrong proof is not an error here: it is
 * an outcome, which the method turns into the same 28P01 every failed password gets.
 *
 * @see https://www.rfc-editor.org/rfc/rfc5802#section-5
 * @see https://www.rfc-editor.org/rfc/rfc7677
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { PgError } from '../../errors/pg-error.ts';
import { SqlState } from '../../errors/sqlstate.ts';
import { DEFAULT_SCRAM_ITERATIONS, hmac, SCRAM_SALT_LENGTH, sha256, xor } from './keys.ts';
import type { ScramVerifier } from './verifier.ts';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';
/** The only channel binding type PostgreSQL (and pgward) supports. */
export const TLS_SERVER_END_POINT = 'tls-server-end-point';
/** Largest SCRAM message accepted from a client; real ones are under 200 bytes. */
export const MAX_SCRAM_MESSAGE_LENGTH = 1024;
/**
 * Largest frame carrying one (length word, mechanism name and data length included), so an oversized
 * message is refused from its header, before its body is buffered.
 */
export const MAX_SCRAM_FRAME_LENGTH = MAX_SCRAM_MESSAGE_LENGTH + 64;
/** Random bytes in the server's part of the nonce (PostgreSQL's SCRAM_RAW_NONCE_LEN). */
const SERVER_NONCE_BYTES = 18;
const KEY_LENGTH = 32;

function malformed(detail: string): PgError {
  return new PgError(SqlState.ProtocolViolation, 'malformed SCRAM message', { detail });
}

/** A character for an error message: itself when printable, else its hex code. */
function sanitize(char: string | undefined): string {
  if (char === undefined || char === '') return 'end of message';
  const code = char.charCodeAt(0);
  return code >= 0x21 && code <= 0x7e ? char : `0x${code.toString(16).padStart(2, '0')}`;
}

/** RFC 5802 `printable`: %x21-2B / %x2D-7E (printable ASCII but the comma). */
function isPrintable(text: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]*$/.test(text);
}

/** Reads the comma-separated `attr=value` parts of a SCRAM message, in order. */
class AttributeReader {
  readonly #text: string;
  #position = 0;

  constructor(text: string) {
    this.#text = text;
  }

  /** Offset of the next unread part. */
  get position(): number {
    return this.#position;
  }

  get done(): boolean {
    return this.#position >= this.#text.length;
  }

  #take(): string {
    const end = this.#text.indexOf(',', this.#position);
    const part = this.#text.slice(this.#position, end < 0 ? this.#text.length : end);
    this.#position = end < 0 ? this.#text.length : end + 1;
    return part;
  }

  /** Consumes `attr=value`; the attribute must be the one named. */
  read(attribute: string): string {
    const part = this.#take();
    if (part[0] !== attribute)
      throw malformed(`Expected attribute "${attribute}" but found "${sanitize(part[0])}".`);
    if (part[1] !== '=') throw malformed(`Expected character "=" for attribute "${attribute}".`);
    return part.slice(2);
  }

  /** Consumes any `attr=value` (an extension); returns the attribute and the value. */
  readAny(): { attribute: string; value: string } {
    const part = this.#take();
    const attribute = part[0] ?? '';
    if (!/^[A-Za-z]$/.test(attribute))
      throw malformed(`Attribute expected, but found invalid character "${sanitize(attribute)}".`);
    if (part[1] !== '=') throw malformed(`Expected character "=" for attribute "${attribute}".`);
    return { attribute, value: part.slice(2) };
  }
}

/** Decodes a SASL message, which must be text with no NUL (PostgreSQL compares strlen to the length). */
export function decodeScramMessage(data: Buffer): string {
  if (data.length === 0) throw malformed('The message is empty.');
  if (data.length > MAX_SCRAM_MESSAGE_LENGTH) throw malformed('The message is too long.');
  if (data.includes(0)) throw malformed('Message length does not match input length.');
  return data.toString('utf8');
}

/** How the exchange ended. */
export type ScramOutcome =
  | {
      ok: true;
      /** The server-final-message (`v=` ServerSignature). */
      serverFinal: string;
      /** The ClientKey recovered from the proof (what scram-passthrough logs in upstream with). */
      clientKey: Buffer;
    }
  | { ok: false; reason: string };

/** What the exchange checks the client against. */
export interface ScramExchangeOptions {
  /** The user's verifier; a mock one for unknown users (see `mockScramVerifier`). */
  verifier: ScramVerifier;
  /** True when the exchange must fail at the proof whatever the client sends (unknown user). */
  doomed: boolean;
  /** The connection runs over TLS (a `y` flag is then a downgrade when -PLUS is offered). */
  tls: boolean;
  /** This connection's `tls-server-end-point` data; null when -PLUS cannot be offered. */
  channelBinding: Buffer | null;
  /** The server nonce part; random unless a test pins it. */
  serverNonce?: string;
}

/** One SCRAM exchange, from mechanism choice to the server-final-message. */
export class ScramServerExchange {
  readonly #options: ScramExchangeOptions;
  readonly #serverNonce: string;
  #mechanism: string | null = null;
  #cbindFlag: 'n' | 'y' | 'p' = 'n';
  #clientFirstBare = '';
  #serverFirst = '';
  #nonce = '';

  constructor(options: ScramExchangeOptions) {
    this.#options = options;
    this.#serverNonce = options.serverNonce ?? randomBytes(SERVER_NONCE_BYTES).toString('base64');
  }

  /** The mechanisms to offer, PostgreSQL's order: -PLUS first when channel binding is possible. */
  get mechanisms(): string[] {
    return this.#options.channelBinding ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256];
  }

  /** The client's choice from SASLInitialResponse; anything not offered is a protocol violation. */
  selectMechanism(mechanism: string): void {
    if (!this.mechanisms.includes(mechanism)) {
      throw new PgError(
        SqlState.ProtocolViolation,
        'client selected an invalid SASL authentication mechanism',
        {
          logMessage: `client selected SASL mechanism "${mechanism}", offered ${this.mechanisms.join(', ')}`,
        },
      );
    }
    this.#mechanism = mechanism;
  }

  get #bindingInUse(): boolean {
    return this.#mechanism === SCRAM_SHA_256_PLUS;
  }

  /** Reads the client-first-message; returns the server-first-message. */
  clientFirst(message: string): string {
    let rest = message;
    const flag = rest[0];
    if (flag === 'n' || flag === 'y') {
      // `y`: the client could bind but believes the server cannot. When -PLUS was on offer that is a
      // downgrade someone in the middle arranged (RFC 5802 section 6).
      if (flag === 'y' && this.#options.channelBinding) {
        throw new PgError(SqlState.ProtocolViolation, 'SCRAM channel binding negotiation error', {
          detail:
            'The client supports SCRAM channel binding but thinks the server does not.  However, this server does support channel binding.',
        });
      }
      if (this.#bindingInUse) {
        throw malformed(
          'The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.',
        );
      }
      this.#cbindFlag = flag;
      rest = rest.slice(1);
    } else if (flag === 'p') {
      if (!this.#bindingInUse) {
        throw malformed(
          'The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.',
        );
      }
      const end = rest.indexOf(',');
      const part = end < 0 ? rest : rest.slice(0, end);
      if (part[1] !== '=') throw malformed('Expected character "=" for attribute "p".');
      const type = part.slice(2);
      if (type !== TLS_SERVER_END_POINT) {
        throw new PgError(
          SqlState.ProtocolViolation,
          `unsupported SCRAM channel-binding type "${type.replace(/[^\x21-\x7e]/g, '?')}"`,
        );
      }
      this.#cbindFlag = 'p';
      rest = rest.slice(part.length);
    } else {
      throw malformed(`Unexpected channel-binding flag "${sanitize(flag)}".`);
    }
    if (rest[0] !== ',') throw malformed(`Comma expected, but found character "${sanitize(rest[0])}".`);
    rest = rest.slice(1);
    if (rest[0] === 'a') {
      throw new PgError(
        SqlState.FeatureNotSupported,
        'client uses authorization identity, but it is not supported',
      );
    }
    if (rest[0] !== ',')
      throw malformed(`Unexpected attribute "${sanitize(rest[0])}" in client-first-message.`);
    rest = rest.slice(1);
    this.#clientFirstBare = rest;
    if (rest[0] === 'm')
      throw new PgError(SqlState.FeatureNotSupported, 'client requires an unsupported SCRAM extension');
    const reader = new AttributeReader(rest);
    // The user name is taken from the StartupMessage; libpq sends an empty one here.
    reader.read('n');
    const clientNonce = reader.read('r');
    if (clientNonce === '' || !isPrintable(clientNonce))
      throw new PgError(SqlState.ProtocolViolation, 'non-printable characters in SCRAM nonce');
    // Optional extensions are read and ignored, as PostgreSQL does.
    while (!reader.done) reader.readAny();
    this.#nonce = clientNonce + this.#serverNonce;
    const { salt, iterations } = this.#options.verifier;
    this.#serverFirst = `r=${this.#nonce},s=${salt.toString('base64')},i=${iterations}`;
    return this.#serverFirst;
  }

  /** The `c=` value the client must send: base64 of the GS2 header, plus the binding data for -PLUS. */
  #expectedChannelBinding(): string {
    if (this.#cbindFlag === 'p') {
      const header = Buffer.from(`p=${TLS_SERVER_END_POINT},,`);
      return Buffer.concat([header, this.#options.channelBinding ?? Buffer.alloc(0)]).toString('base64');
    }
    return Buffer.from(`${this.#cbindFlag},,`).toString('base64');
  }

  /** Reads the client-final-message and checks binding, nonce and proof. */
  clientFinal(message: string): ScramOutcome {
    const reader = new AttributeReader(message);
    const binding = reader.read('c');
    const expected = this.#expectedChannelBinding();
    if (this.#cbindFlag === 'p') {
      if (binding !== expected) {
        throw new PgError(SqlState.InvalidAuthorizationSpecification, 'SCRAM channel binding check failed');
      }
    } else if (binding !== expected) {
      throw new PgError(
        SqlState.ProtocolViolation,
        'unexpected SCRAM channel-binding attribute in client-final-message',
      );
    }
    const nonce = reader.read('r');
    let proofText: string | undefined;
    let proofStart = 0;
    // Extensions may come before the proof; the proof is the last attribute.
    while (proofText === undefined) {
      if (reader.done) throw malformed('Could not find proof in client-final-message.');
      const start = reader.position;
      const { attribute, value } = reader.readAny();
      if (attribute === 'p') {
        proofText = value;
        proofStart = start;
      }
    }
    const proof = Buffer.from(proofText, 'base64');
    if (proof.length !== KEY_LENGTH || !/^[A-Za-z0-9+/]*={0,2}$/.test(proofText))
      throw malformed('Malformed proof in client-final-message.');
    if (!reader.done) throw malformed('Garbage found at the end of client-final-message.');
    if (nonce !== this.#nonce)
      throw new PgError(SqlState.ProtocolViolation, 'invalid SCRAM response', {
        detail: 'Nonce does not match.',
      });

    // client-final-message-without-proof: everything before ",p=".
    const withoutProof = message.slice(0, proofStart - 1);
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const { storedKey, serverKey } = this.#options.verifier;
    const clientSignature = hmac(storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    // The proof is computed and compared for unknown users too, so they take the same time.
    const proven = timingSafeEqual(sha256(clientKey), storedKey);
    if (this.#options.doomed) return { ok: false, reason: 'unknown user (mock SCRAM exchange)' };
    if (!proven) return { ok: false, reason: 'SCRAM proof does not match' };
    return { ok: true, serverFinal: `v=${hmac(serverKey, authMessage).toString('base64')}`, clientKey };
  }
}

/**
 * The verifier an unknown user is checked against (PostgreSQL's mock_scram_secret): a salt derived
 * from the user name and the server's secret, so it stays the same across attempts and restarts, the
 * default iteration count, and keys no proof matches.
 */
export function mockScramVerifier(user: string, secret: Buffer): ScramVerifier {
  const salt = sha256(Buffer.concat([Buffer.from(user, 'utf8'), secret])).subarray(0, SCRAM_SALT_LENGTH);
  const keys = sha256(Buffer.concat([Buffer.from('pgward mock keys'), secret, Buffer.from(user, 'utf8')]));
  return { iterations: DEFAULT_SCRAM_ITERATIONS, salt, storedKey: keys, serverKey: keys };
}
