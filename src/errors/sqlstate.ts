/**
 * The named SQLSTATE registry: every code pgward sends to a client is named here, and nowhere else.
 *
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

export const SqlState = {
  /** 08006: the upstream server could not be reached or went away. */
  ConnectionFailure: '08006',
  /** 08P01: the client broke the wire protocol (bad lengths, garbage, unexpected messages). */
  ProtocolViolation: '08P01',
  /** 0A000: e.g. an unsupported protocol major version. */
  FeatureNotSupported: '0A000',
  /** 22023: a startup parameter has a value that cannot be used. */
  InvalidParameterValue: '22023',
  /** 28000: no HBA entry, a rejecting rule, certificate and token failures. */
  InvalidAuthorizationSpecification: '28000',
  /** 42501: an external user tried to choose the role its token grants. */
  InsufficientPrivilege: '42501',
  /** 28P01: password authentication failed (wrong password and unknown user alike). */
  InvalidPassword: '28P01',
  /** 22P02: a value cannot be read (e.g. an HTTP request body that is not the JSON expected). */
  InvalidTextRepresentation: '22P02',
  /** 53300: too many clients. */
  TooManyConnections: '53300',
  /** 54000: a result larger than the HTTP endpoint's limit, a request body over its limit. */
  ProgramLimitExceeded: '54000',
  /** 57014: authentication did not complete in time. */
  QueryCanceled: '57014',
  /** 57P01: pgward is shutting down. */
  AdminShutdown: '57P01',
  /** 57P03: the server cannot accept connections right now (e.g. starting up). */
  CannotConnectNow: '57P03',
  /** XX000: a bug in pgward; the detail goes to the log only. */
  InternalError: 'XX000',
} as const;

/** A SQLSTATE pgward itself may send; codes relayed from upstream are plain strings. */
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
