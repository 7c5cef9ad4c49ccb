/**
 * PgError: an error a client is allowed to see, with the SQLSTATE and wording PostgreSQL would use.
 * The text for the log (`logMessage`) may say more than the text for the client (`message`).
 */

import type { SqlStateCode } from './sqlstate.ts';

/** ErrorResponse severities pgward sends. */
export type PgSeverity = 'ERROR' | 'FATAL';

/** Optional parts of a PgError. */
export interface PgErrorOptions {
  detail?: string | undefined;
  hint?: string | undefined;
  severity?: PgSeverity;
  /** What the log gets instead of `message` (never sent to the client). */
  logMessage?: string | undefined;
  cause?: unknown;
}

/** An error that maps to one ErrorResponse. */
export class PgError extends Error {
  override readonly name = 'PgError';
  readonly sqlstate: SqlStateCode | string;
  readonly severity: PgSeverity;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly logMessage: string;

  constructor(sqlstate: SqlStateCode | string, message: string, options: PgErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.sqlstate = sqlstate;
    this.severity = options.severity ?? 'FATAL';
    this.detail = options.detail;
    this.hint = options.hint;
    this.logMessage = options.logMessage ?? message;
  }
}
