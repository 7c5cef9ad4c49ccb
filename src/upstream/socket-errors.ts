/**
 * The errors of an upstream connection that breaks after login, while pgward itself talks to it (the
 * HTTP endpoint's statement, an external user's SET ROLE): in PostgreSQL's wording where it has one.
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';

/** The upstream sent something pgward cannot decode. */
export function unreadableAnswer(error: unknown): PgError {
  return new PgError(
    SqlState.InternalError,
    `cannot read the upstream's answer: ${(error as Error).message}`,
  );
}

/** The upstream socket failed. */
export function connectionFailed(error: Error): PgError {
  return new PgError(SqlState.ConnectionFailure, `upstream connection failed: ${error.message}`);
}

/** The upstream closed the connection before answering. */
export function connectionClosed(): PgError {
  return new PgError(SqlState.ConnectionFailure, 'upstream server closed the connection unexpectedly');
}
