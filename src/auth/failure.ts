/**
 * Authentication failures: the precise reason goes to the log; the client gets one of a few fixed
 * answers in PostgreSQL's wording, so nothing it sees tells whether a user exists.
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { TOKEN_PROBLEM_MESSAGES, type TokenProblem } from '../tokens/token.ts';

/** Classes of failure; each maps to exactly one client-visible error shape. */
export type FailureKind =
  | 'password'
  | 'hba-reject'
  /** The rule needs a client certificate and none was presented. */
  | 'certificate-missing'
  /** The certificate did not verify: expired, not yet valid, unknown CA, revoked. */
  | 'certificate-invalid'
  /** The certificate verified, but its name does not match the user (directly or through a map). */
  | 'certificate'
  /** A bearer token failed a check: the client is told which class of problem (`token expired`). */
  | 'token'
  /**
   * An OAUTHBEARER discovery request (an empty `auth`): the client asked where to get a token and
   * expected this failure. Not a failed login: never counted against the client, logged as discovery.
   */
  | 'oauth-discovery';

/** An authentication failure: the class (drives the client message) and the reason (log only). */
export interface AuthFailure {
  kind: FailureKind;
  /** Why, for the log: `unknown user`, `wrong password`, `no verifier stored`… */
  reason: string;
  /** A DETAIL the client may see (only where it tells nothing about other users). */
  detail?: string;
  /** For `token` failures: the class of problem, the whole of what the client is told. */
  tokenProblem?: TokenProblem;
}

/** Facts the client-visible message may name. */
export interface FailureFacts {
  user: string;
  database: string;
  host: string;
  tls: boolean;
}

/** The one function mapping a failure to what the client sees. */
export function failureToPgError(failure: AuthFailure, facts: FailureFacts): PgError {
  switch (failure.kind) {
    case 'password':
      return new PgError(
        SqlState.InvalidPassword,
        `password authentication failed for user "${facts.user}"`,
        {
          logMessage: `password authentication failed for user "${facts.user}": ${failure.reason}`,
        },
      );
    case 'certificate-missing':
      return new PgError(
        SqlState.InvalidAuthorizationSpecification,
        'connection requires a valid client certificate',
        { logMessage: `connection requires a valid client certificate: ${failure.reason}` },
      );
    case 'certificate-invalid':
      return new PgError(
        SqlState.InvalidAuthorizationSpecification,
        `certificate validation failed for user "${facts.user}"`,
        { detail: failure.detail, logMessage: `certificate validation failed: ${failure.reason}` },
      );
    case 'certificate':
      return new PgError(
        SqlState.InvalidAuthorizationSpecification,
        `certificate authentication failed for user "${facts.user}"`,
        { logMessage: `certificate authentication failed for user "${facts.user}": ${failure.reason}` },
      );
    case 'token': {
      const message = TOKEN_PROBLEM_MESSAGES[failure.tokenProblem ?? 'malformed'];
      return new PgError(SqlState.InvalidAuthorizationSpecification, message, {
        logMessage: `token authentication failed for user "${facts.user}": ${message}: ${failure.reason}`,
      });
    }
    case 'oauth-discovery':
      return new PgError(
        SqlState.InvalidAuthorizationSpecification,
        `OAuth bearer authentication failed for user "${facts.user}"`,
        { logMessage: `OAuth issuer discovery requested by user "${facts.user}"` },
      );
    case 'hba-reject':
      return new PgError(
        SqlState.InvalidAuthorizationSpecification,
        `pg_hba.conf rejects connection for host "${facts.host}", user "${facts.user}", database "${facts.database}", ${facts.tls ? 'SSL encryption' : 'no encryption'}`,
        { logMessage: `rejected by rule: ${failure.reason}` },
      );
  }
}
