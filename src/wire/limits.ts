/**
 * Named limits and protocol codes of the PostgreSQL wire protocol, as pgward enforces them.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** Smallest startup packet: the length word plus a request code or protocol version. */
export const MIN_STARTUP_PACKET_LENGTH = 8;
/** Largest startup packet PostgreSQL accepts (MAX_STARTUP_PACKET_LENGTH in pqcomm.h). */
export const MAX_STARTUP_PACKET_LENGTH = 10000;
/** Smallest typed message: the length word counts itself. */
export const MIN_MESSAGE_LENGTH = 4;
/** Default cap on a typed message read before the relay starts (auth phase): 64 KiB plus header. */
export const DEFAULT_MAX_MESSAGE_LENGTH = 65536 + 4;
/** PostgreSQL truncates user and database names to NAMEDATALEN - 1 bytes. */
export const NAMEDATALEN = 64;
/** Longest cancel key protocol 3.2 allows (MAX_CANCEL_KEY_LENGTH). */
export const MAX_CANCEL_KEY_LENGTH = 256;
/** Cancel key length pgward issues to protocol 3.2 clients (PostgreSQL 18 uses 32). */
export const CANCEL_KEY_LENGTH_3_2 = 32;

/** Request codes that stand where a protocol version would in a startup packet. */
export const RequestCode = {
  CancelRequest: 80877102,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
} as const;

/** Protocol versions pgward speaks to clients. */
export const PROTOCOL_MAJOR = 3;
/** Newest minor version pgward speaks (3.2, PostgreSQL 18). */
export const PROTOCOL_LATEST_MINOR = 2;

/** First byte of a TLS record carrying a handshake (direct TLS ClientHello). */
export const TLS_HANDSHAKE_RECORD = 0x16;
/** ALPN protocol name PostgreSQL requires for direct TLS. */
export const POSTGRESQL_ALPN = 'postgresql';
