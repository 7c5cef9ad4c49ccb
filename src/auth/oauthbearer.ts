/**
 * The OAUTHBEARER SASL messages (RFC 7628), read the way PostgreSQL 18 reads them
 * (src/backend/libpq/auth-oauth.c): the client's response is a GS2 header (`n,,` or `y,,`; no channel
 * binding, no authzid), a kvsep (0x01), `key=value` pairs each ended by a kvsep, and a final empty
 * pair. Exactly one pair is `auth`: empty for a discovery request, else an HTTP Authorization value
 * whose scheme must be `Bearer`. Structural errors are FATAL 08P01 `malformed OAUTHBEARER message`
 * with PostgreSQL's details; a token that is not RFC 6750 `b64token` is a failed login, not a protocol
 * error, so nothing about the secret is reflected to the client.
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { B64TOKEN } from '../tokens/token.ts';

export const OAUTHBEARER = 'OAUTHBEARER';
/** PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: the longest OAUTHBEARER message, its length word included. */
export const MAX_OAUTHBEARER_MESSAGE = 65535;
/** The key/value separator, and the whole of a client's answer to an error challenge. */
export const KVSEP = 0x01;

function malformed(detail: string): PgError {
  return new PgError(SqlState.ProtocolViolation, 'malformed OAUTHBEARER message', { detail });
}

/** A byte as PostgreSQL prints it in details: `'x'` when printable, else `0xNN`. */
function shown(byte: number | undefined): string {
  if (byte === undefined) return '0x00';
  return byte >= 0x21 && byte <= 0x7e
    ? `'${String.fromCharCode(byte)}'`
    : `0x${byte.toString(16).padStart(2, '0')}`;
}

/** Rejects an empty message and one with a NUL inside (the C server compares strlen to the length). */
export function checkMessageBytes(data: Buffer): void {
  if (data.length === 0) throw malformed('The message is empty.');
  if (data.includes(0)) throw malformed('Message length does not match input length.');
}

function checkPair(key: string, value: string): void {
  if (key === '') throw malformed('Message contains an empty key name.');
  if (!/^[A-Za-z]+$/.test(key)) throw malformed('Message contains an invalid key name.');
  // value = *(VCHAR / SP / HTAB / CR / LF)
  if (!/^[\x21-\x7e \t\r\n]*$/.test(value)) throw malformed('Message contains an invalid value.');
}

/** Reads the pairs after the header; returns the `auth` value and where the pairs ended. */
function readPairs(text: string, start: number): { auth: string | null; end: number } {
  let auth: string | null = null;
  let position = start;
  while (position < text.length) {
    const end = text.indexOf('\x01', position);
    if (end < 0) throw malformed('Message contains an unterminated key/value pair.');
    if (end === position) return { auth, end: end + 1 };
    const pair = text.slice(position, end);
    const equals = pair.indexOf('=');
    if (equals < 0) throw malformed('Message contains a key without a value.');
    const key = pair.slice(0, equals);
    const value = pair.slice(equals + 1);
    checkPair(key, value);
    if (key === 'auth') {
      if (auth !== null) throw malformed('Message contains multiple auth values.');
      auth = value;
    }
    // Other keys (host, port, extensions) are ignored, as RFC 7628 section 3.1 says.
    position = end + 1;
  }
  throw malformed('Message did not contain a final terminator.');
}

/**
 * Reads a client initial response; returns its `auth` value (`''`: a discovery request).
 * Throws PgError: 08P01 for structure, 0A000 for an authorization identity.
 */
export function parseClientResponse(data: Buffer): string {
  checkMessageBytes(data);
  // Bytes map one to one onto latin1 characters, so offsets and details stay byte-exact.
  const text = data.toString('latin1');
  const flag = data[0];
  if (flag === 0x70 /* p */)
    throw malformed(
      'The server does not support channel binding for OAuth, but the client message includes channel binding data.',
    );
  if (flag !== 0x6e /* n */ && flag !== 0x79 /* y */)
    throw malformed(`Unexpected channel-binding flag ${quoted(flag)}.`);
  if (data[1] !== 0x2c) throw malformed(`Comma expected, but found character ${quoted(data[1])}.`);
  if (data[2] === 0x61 /* a */)
    throw new PgError(
      SqlState.FeatureNotSupported,
      'client uses authorization identity, but it is not supported',
    );
  if (data[2] !== 0x2c) throw malformed(`Unexpected attribute ${quoted(data[2])} in client-first-message.`);
  if (data[3] !== KVSEP)
    throw malformed(`Key-value separator expected, but found character ${quoted(data[3])}.`);
  const { auth, end } = readPairs(text, 4);
  if (auth === null) throw malformed('Message does not contain an auth value.');
  if (end !== text.length) throw malformed('Message contains additional data after the final terminator.');
  return auth;
}

function quoted(byte: number | undefined): string {
  return `"${shown(byte)}"`;
}

/** A client initial response carrying `auth` (what a client sends; HTTP sends it for its client). */
export function encodeClientResponse(auth: string): Buffer {
  return Buffer.from(`n,,\x01auth=${auth}\x01\x01`, 'latin1');
}

/** The answer to an error challenge must be one kvsep; anything else is a protocol violation. */
export function checkErrorAcknowledgement(data: Buffer): void {
  checkMessageBytes(data);
  if (data.length !== 1 || data[0] !== KVSEP) throw malformed('Client did not send a kvsep response.');
}

/**
 * The token of an `auth` value `Bearer <token>` (scheme case-insensitive, then spaces; the token is
 * RFC 6750 `b64token`), or why there is none — for the log only.
 */
export function bearerToken(auth: string): { token: string } | { problem: string } {
  if (auth.slice(0, 7).toLowerCase() !== 'bearer ')
    return { problem: 'client response indicated a non-Bearer authentication scheme' };
  const token = auth.slice(7).replace(/^ +/, '');
  if (token === '') return { problem: 'bearer token is empty' };
  if (!B64TOKEN.test(token)) return { problem: 'bearer token is not in the correct format' };
  return { token };
}

/**
 * The RFC 7628 error challenge: where the client discovers the issuer and which scope to ask for.
 * The issuer is made a discovery URL unless it already is one (a `/.well-known/` path), as in
 * PostgreSQL; libpq 18 compares it byte for byte with its `oauth_issuer`.
 */
export function errorChallenge(issuer: string, scope: string): Buffer {
  const configuration = issuer.includes('/.well-known/')
    ? issuer
    : `${issuer}/.well-known/openid-configuration`;
  return Buffer.from(
    JSON.stringify({ status: 'invalid_token', 'openid-configuration': configuration, scope }),
    'utf8',
  );
}
