/**
 * The one interface every authentication method implements. A method is a small state machine: it
 * returns steps (send this challenge and give me the reply / accepted / rejected) and never touches a
 * socket; proxy/session.ts drives it.
 */

import type { Logger } from 'pino';
import type { UserDirectory } from '../credentials/users-file.ts';
import type { HbaRule } from '../hba/rule.ts';
import type { AuthFailure } from './failure.ts';

/** What a method may know about the connection it is authenticating. */
export interface AuthContext {
  /** The user named in the StartupMessage. */
  user: string;
  database: string;
  /** Client address as text, or `[local]`. */
  host: string;
  tls: boolean;
  rule: HbaRule;
  users: UserDirectory;
  log: Logger;
}

/** Who the client proved to be. */
export interface AuthIdentity {
  /** The PostgreSQL user the session runs as (the startup user unless a method maps it). */
  user: string;
  /** The identity the method verified (e.g. a certificate CN or token subject), for the log. */
  authenticatedAs: string;
  /** The client's cleartext password, when the method received one (for upstream passthrough). */
  cleartextPassword?: string;
}

/** The next thing the session must do for a method. */
export type AuthStep =
  | {
      kind: 'challenge';
      /** A backend message to send (an Authentication* request). */
      message: Buffer;
      /** Called with the body of the client's next 'p' message. */
      next: (reply: Buffer) => Promise<AuthStep>;
    }
  | { kind: 'accepted'; identity: AuthIdentity }
  | { kind: 'rejected'; failure: AuthFailure };

/** An authentication method named by HBA rules. */
export interface AuthMethod {
  readonly name: string;
  begin(ctx: AuthContext): Promise<AuthStep>;
}

/** Shorthand for an accepted step. */
export function accepted(identity: AuthIdentity): AuthStep {
  return { kind: 'accepted', identity };
}

/** Shorthand for a rejected step. */
export function rejected(failure: AuthFailure): AuthStep {
  return { kind: 'rejected', failure };
}
