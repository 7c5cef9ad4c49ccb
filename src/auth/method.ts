/**
 * The one interface every authentication method implements. A method is a small state machine: it
 * returns steps (send this challenge and give me the reply / accepted / rejected) and never touches a
 * socket; proxy/session.ts drives it.
 */

import type { Logger } from 'pino';
import type { CredentialSource } from '../credentials/credentials.ts';
import type { UserTokenBinding } from '../credentials/users-file.ts';
import type { IdentMap } from '../hba/ident-map.ts';
import type { HbaRule } from '../hba/rule.ts';
import type { PeerCertificate } from '../tls/peer-certificate.ts';
import type { TokenValidator, ValidToken } from '../tokens/token.ts';
import type { TokenValidatorConfig } from '../tokens/validator-config.ts';
import { encodeAuthenticationCleartextPassword } from '../wire/backend.ts';
import { parsePasswordMessage } from '../wire/frontend.ts';
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
  /** Stored credentials (users file, auth_query). */
  credentials: CredentialSource;
  /**
   * The `tls-server-end-point` channel binding data of this TLS connection (RFC 5929: the server
   * certificate's hash), or null when there is none (no TLS, or a certificate without a usable hash).
   */
  channelBinding: Buffer | null;
  /** The secret unknown users' mock SCRAM salts derive from (stable across restarts). */
  mockSecret: Buffer;
  /** The client's TLS certificate, when it presented one (verified or not: see its `problem`). */
  peerCertificate: PeerCertificate | null;
  /** The ident maps of the HBA file, for rules with `map`. */
  maps: ReadonlyMap<string, IdentMap>;
  /** The users file groups of a user (for `+group` in ident maps). */
  groupsOf(user: string): ReadonlySet<string>;
  /** The token validators of pgward.yaml, by name (jwt and oauth rules name one). */
  tokenValidators: ReadonlyMap<string, TokenValidator>;
  /** A local user's token binding (users.yaml `jwt:`), if any. */
  tokenBindingOf(user: string): UserTokenBinding | undefined;
  /** The configuration of a named validator (its external users, its session policy). */
  validatorConfig(name: string): TokenValidatorConfig | undefined;
  /** Whether users.yaml defines the user (a local user, as opposed to an external one). */
  isLocalUser(user: string): boolean;
  log: Logger;
}

/** The SCRAM keys a client proved it holds, for logging in upstream with them (scram-passthrough). */
export interface ScramClientKeys {
  clientKey: Buffer;
  serverKey: Buffer;
  salt: Buffer;
  iterations: number;
}

/** Who the client proved to be. */
export interface AuthIdentity {
  /** The PostgreSQL user the session runs as (the startup user unless a method maps it). */
  user: string;
  /** The identity the method verified (e.g. a certificate CN or token subject), for the log. */
  authenticatedAs: string;
  /** The client's cleartext password, when the method received one (for upstream passthrough). */
  cleartextPassword?: string;
  /** The SCRAM keys, when the client authenticated with SCRAM (for scram-passthrough). */
  scramKeys?: ScramClientKeys;
  /** The token, when the client authenticated with one (its expiry, its claims for role mapping). */
  token?: ValidToken;
  /** The role to `SET ROLE` to once logged in upstream (an external user's granted role). */
  role?: string;
  /** When the session must end (end_session_at_token_expiry: the token's expiry). */
  sessionEndsAt?: Date;
}

/** The next thing the session must do for a method. */
export type AuthStep =
  | {
      kind: 'challenge';
      /** A backend message to send (an Authentication* request). */
      message: Buffer;
      /** The longest reply the method accepts (length word included); longer is a protocol violation. */
      maxReplyLength?: number;
      /** Called with the body of the client's next 'p' message. */
      next: (reply: Buffer) => Promise<AuthStep>;
      /**
       * How the exchange ends if the client hangs up instead of answering (OAUTHBEARER's error
       * challenge: a client may close rather than acknowledge). Unset: a hang-up is just a hang-up.
       */
      ifClientGone?: AuthFailure;
    }
  | {
      kind: 'accepted';
      identity: AuthIdentity;
      /** A message to send before AuthenticationOk (SCRAM's AuthenticationSASLFinal). */
      finalMessage?: Buffer;
    }
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

/**
 * Asks for a secret in clear (AuthenticationCleartextPassword: a password or a token; on HTTP the
 * Basic password or Bearer token answers it) and hands it to `check`.
 */
export function askCleartext(check: (secret: string) => Promise<AuthStep>): AuthStep {
  return {
    kind: 'challenge',
    message: encodeAuthenticationCleartextPassword(),
    next: (reply) => check(parsePasswordMessage(reply)),
  };
}
