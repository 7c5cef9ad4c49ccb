/**
 * Encoders for the backend messages pgward itself writes to clients: Authentication*, ParameterStatus,
 * BackendKeyData, ReadyForQuery, NoticeResponse, ErrorResponse, NegotiateProtocolVersion and the
 * one-byte TLS/GSS negotiation answers. Bytes out only; relayed upstream messages are never re-encoded.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

import type { PgError } from '../errors/pg-error.ts';
import { PROTOCOL_MAJOR } from './limits.ts';

/** The codes of Authentication* messages. */
export const AuthCode = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

function message(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function int32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeInt32BE(value, 0);
  return out;
}

function cstring(value: string): Buffer {
  return Buffer.from(`${value}\0`, 'utf8');
}

function authentication(code: number, payload?: Buffer): Buffer {
  return message('R', payload ? Buffer.concat([int32(code), payload]) : int32(code));
}

/** AuthenticationOk. */
export function encodeAuthenticationOk(): Buffer {
  return authentication(AuthCode.Ok);
}

/** AuthenticationCleartextPassword. */
export function encodeAuthenticationCleartextPassword(): Buffer {
  return authentication(AuthCode.CleartextPassword);
}

/**
 * The code of an encoded Authentication* message (AuthCode), or null for any other message: how a
 * front end answering for its client (HTTP) tells which request a method made.
 */
export function authenticationCodeOf(encoded: Buffer): number | null {
  return encoded.length >= 9 && encoded[0] === 0x52 ? encoded.readInt32BE(5) : null;
}

/** AuthenticationMD5Password with its 4-byte salt. */
export function encodeAuthenticationMD5Password(salt: Buffer): Buffer {
  return authentication(AuthCode.MD5Password, salt);
}

/** AuthenticationSASL listing the mechanisms offered, in order of preference. */
export function encodeAuthenticationSASL(mechanisms: readonly string[]): Buffer {
  return authentication(AuthCode.SASL, Buffer.concat([...mechanisms.map(cstring), Buffer.from([0])]));
}

/** AuthenticationSASLContinue carrying a server message. */
export function encodeAuthenticationSASLContinue(data: Buffer): Buffer {
  return authentication(AuthCode.SASLContinue, data);
}

/** AuthenticationSASLFinal carrying the server's final message. */
export function encodeAuthenticationSASLFinal(data: Buffer): Buffer {
  return authentication(AuthCode.SASLFinal, data);
}

/** ParameterStatus. */
export function encodeParameterStatus(name: string, value: string): Buffer {
  return message('S', Buffer.concat([cstring(name), cstring(value)]));
}

/** BackendKeyData: 4-byte keys for protocol 3.0, up to 256 bytes for 3.2. */
export function encodeBackendKeyData(processId: number, secretKey: Buffer): Buffer {
  const pid = Buffer.allocUnsafe(4);
  pid.writeUInt32BE(processId >>> 0, 0);
  return message('K', Buffer.concat([pid, secretKey]));
}

/** Transaction status letters of ReadyForQuery. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** ReadyForQuery. */
export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return message('Z', Buffer.from(status, 'latin1'));
}

/** NegotiateProtocolVersion: the newest minor we support and the `_pq_.` options we did not recognize. */
export function encodeNegotiateProtocolVersion(minor: number, unrecognized: readonly string[]): Buffer {
  return message(
    'v',
    Buffer.concat([
      int32((PROTOCOL_MAJOR << 16) | minor),
      int32(unrecognized.length),
      ...unrecognized.map(cstring),
    ]),
  );
}

/** Fields of an ErrorResponse or NoticeResponse, keyed by their one-letter codes. */
export interface ResponseFields {
  severity: string;
  code: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

function encodeFields(type: 'E' | 'N', fields: ResponseFields): Buffer {
  const parts = [
    `S${fields.severity}\0`,
    `V${fields.severity}\0`,
    `C${fields.code}\0`,
    `M${fields.message}\0`,
    fields.detail === undefined ? '' : `D${fields.detail}\0`,
    fields.hint === undefined ? '' : `H${fields.hint}\0`,
    '\0',
  ];
  return message(type, Buffer.from(parts.join(''), 'utf8'));
}

/** ErrorResponse for a PgError (client-visible text only). */
export function encodeErrorResponse(error: PgError): Buffer {
  return encodeFields('E', {
    severity: error.severity,
    code: error.sqlstate,
    message: error.message,
    detail: error.detail,
    hint: error.hint,
  });
}

/** NoticeResponse (severity NOTICE unless given). */
export function encodeNoticeResponse(
  fields: Omit<ResponseFields, 'severity'> & { severity?: string },
): Buffer {
  return encodeFields('N', { ...fields, severity: fields.severity ?? 'NOTICE' });
}

/** The one-byte answers to SSLRequest and GSSENCRequest. */
export const NegotiationAnswer = {
  AcceptTls: Buffer.from('S', 'latin1'),
  Refuse: Buffer.from('N', 'latin1'),
} as const;
