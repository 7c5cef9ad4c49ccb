/**
 * Parsers for what a client sends before the relay starts: startup packets (StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest) and the authentication messages of the 'p' family.
 * Pure functions of bytes; every malformed input becomes a PgError, never an exception of another kind.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import {
  MAX_CANCEL_KEY_LENGTH,
  NAMEDATALEN,
  PROTOCOL_LATEST_MINOR,
  PROTOCOL_MAJOR,
  RequestCode,
} from './limits.ts';

/** A protocol version as major.minor. */
export interface ProtocolVersion {
  major: number;
  minor: number;
}

/** A StartupMessage, split into ordinary parameters and `_pq_.` protocol options. */
export interface StartupMessage {
  kind: 'StartupMessage';
  /** The version the client asked for. */
  requested: ProtocolVersion;
  /** Ordinary parameters in the order sent (user, database, options, GUCs). */
  parameters: ReadonlyMap<string, string>;
  /** Names of `_pq_.` options; pgward supports none, so all are reported back as unrecognized. */
  protocolOptions: readonly string[];
}

/** A CancelRequest: the process id and secret key the client was given in BackendKeyData. */
export interface CancelRequest {
  kind: 'CancelRequest';
  processId: number;
  secretKey: Buffer;
}

/** Any startup packet. */
export type StartupPacket =
  | { kind: 'SSLRequest' }
  | { kind: 'GSSENCRequest' }
  | CancelRequest
  | StartupMessage;

function protocolViolation(message: string, logMessage?: string): PgError {
  return new PgError(SqlState.ProtocolViolation, message, logMessage === undefined ? {} : { logMessage });
}

/** Parses the body of a startup packet (after the length word). */
export function parseStartupPacket(body: Buffer): StartupPacket {
  const code = body.readUInt32BE(0);
  switch (code) {
    case RequestCode.SSLRequest:
    case RequestCode.GSSENCRequest:
      if (body.length !== 4) throw protocolViolation('invalid length of startup packet');
      return { kind: code === RequestCode.SSLRequest ? 'SSLRequest' : 'GSSENCRequest' };
    case RequestCode.CancelRequest:
      return parseCancelRequest(body);
    default:
      return parseStartupMessage(body, code);
  }
}

function parseCancelRequest(body: Buffer): CancelRequest {
  const keyLength = body.length - 8;
  if (keyLength < 4 || keyLength > MAX_CANCEL_KEY_LENGTH) {
    throw protocolViolation(
      'invalid length of startup packet',
      `invalid CancelRequest key length ${keyLength}`,
    );
  }
  return { kind: 'CancelRequest', processId: body.readUInt32BE(4), secretKey: body.subarray(8) };
}

function parseStartupMessage(body: Buffer, version: number): StartupMessage {
  const requested = { major: version >>> 16, minor: version & 0xffff };
  if (requested.major !== PROTOCOL_MAJOR) {
    throw new PgError(
      SqlState.FeatureNotSupported,
      `unsupported frontend protocol ${requested.major}.${requested.minor}: server supports ${PROTOCOL_MAJOR}.0 to ${PROTOCOL_MAJOR}.${PROTOCOL_LATEST_MINOR}`,
    );
  }
  const parameters = new Map<string, string>();
  const protocolOptions: string[] = [];
  let offset = 4;
  while (offset < body.length && body[offset] !== 0) {
    const nameEnd = body.indexOf(0, offset);
    const valueEnd = nameEnd < 0 ? -1 : body.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) break;
    const name = body.toString('utf8', offset, nameEnd);
    const value = body.toString('utf8', nameEnd + 1, valueEnd);
    if (name.startsWith('_pq_.')) protocolOptions.push(name);
    else parameters.set(name, value);
    offset = valueEnd + 1;
  }
  if (offset !== body.length - 1 || body[offset] !== 0) {
    throw protocolViolation('invalid startup packet layout: expected terminator as last byte');
  }
  return { kind: 'StartupMessage', requested, parameters, protocolOptions };
}

/** The connection facts a StartupMessage determines, validated as PostgreSQL does. */
export interface StartupIdentity {
  user: string;
  database: string;
  /** false, 'physical' (replication=true) or 'logical' (replication=database). */
  replication: false | 'physical' | 'logical';
}

const TRUE_WORDS = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const FALSE_WORDS = new Set(['off', 'false', 'no', '0', 'f', 'n']);

function truncateName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length < NAMEDATALEN) return name;
  // Cut at a character boundary, as PostgreSQL's pg_mbcliplen does.
  let end = NAMEDATALEN - 1;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}

/** Reads user, database and replication from a StartupMessage (database defaults to the user). */
export function readStartupIdentity(message: StartupMessage): StartupIdentity {
  const user = message.parameters.get('user') ?? '';
  if (user === '') {
    throw new PgError(
      SqlState.InvalidAuthorizationSpecification,
      'no PostgreSQL user name specified in startup packet',
    );
  }
  const rawReplication = message.parameters.get('replication');
  let replication: StartupIdentity['replication'] = false;
  if (rawReplication !== undefined) {
    const word = rawReplication.toLowerCase();
    if (word === 'database') replication = 'logical';
    else if (TRUE_WORDS.has(word)) replication = 'physical';
    else if (!FALSE_WORDS.has(word)) {
      throw new PgError(
        SqlState.InvalidParameterValue,
        `invalid value for parameter "replication": "${rawReplication}"`,
        { hint: 'Valid values are: "false", 0, "true", 1, "database".' },
      );
    }
  }
  const database = message.parameters.get('database') || user;
  return { user: truncateName(user), database: truncateName(database), replication };
}

/** Reads a PasswordMessage body: one null-terminated string (a password or a token). */
export function parsePasswordMessage(body: Buffer): string {
  const end = body.indexOf(0);
  if (end !== body.length - 1) throw protocolViolation('invalid password packet size');
  return body.toString('utf8', 0, end);
}

/** The body of a PasswordMessage carrying `password` (which must not contain a NUL). */
export function encodePasswordMessageBody(password: string): Buffer {
  return Buffer.from(`${password}\0`, 'utf8');
}

/** The body of a SASLInitialResponse choosing `mechanism` with `data` as the initial response. */
export function encodeSaslInitialResponseBody(mechanism: string, data: Buffer): Buffer {
  const length = Buffer.allocUnsafe(4);
  length.writeInt32BE(data.length, 0);
  return Buffer.concat([Buffer.from(`${mechanism}\0`, 'utf8'), length, data]);
}

/** A SASLInitialResponse: the mechanism chosen and the client's first message (null if absent). */
export interface SaslInitialResponse {
  mechanism: string;
  data: Buffer | null;
}

/** Reads a SASLInitialResponse body. */
export function parseSaslInitialResponse(body: Buffer): SaslInitialResponse {
  const end = body.indexOf(0);
  if (end < 0 || body.length < end + 5) throw protocolViolation('malformed SASLInitialResponse message');
  const mechanism = body.toString('utf8', 0, end);
  const length = body.readInt32BE(end + 1);
  const rest = body.subarray(end + 5);
  if (length === -1 && rest.length === 0) return { mechanism, data: null };
  if (length !== rest.length) throw protocolViolation('malformed SASLInitialResponse message');
  return { mechanism, data: rest };
}

/** Frontend message type bytes pgward reads before the relay starts. */
export const FrontendType = {
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: meaning depends on context. */
  Password: 0x70, // 'p'
  Terminate: 0x58, // 'X'
} as const;
