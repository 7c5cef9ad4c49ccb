/**
 * What every token validator answers: a valid token (its claims, the principal and when it expires)
 * or one class of problem. The class is all a client is told (`token expired`); the reason, with the
 * details, goes to the log. The token itself is never echoed, to either.
 */

/** Classes of token problems; each maps to one client-visible message. */
export type TokenProblem =
  | 'malformed'
  | 'too-large'
  | 'algorithm'
  | 'unknown-key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'issued-in-future'
  | 'issuer'
  | 'audience'
  | 'scope'
  | 'inactive'
  | 'principal'
  | 'unavailable';

/** The client-visible message of each class (FATAL 28000). */
export const TOKEN_PROBLEM_MESSAGES: Readonly<Record<TokenProblem, string>> = {
  malformed: 'token is malformed',
  'too-large': 'token is too large',
  algorithm: 'token algorithm is not accepted',
  'unknown-key': 'token signing key is unknown',
  signature: 'token signature is invalid',
  expired: 'token expired',
  'not-yet-valid': 'token is not yet valid',
  'issued-in-future': 'token was issued in the future',
  issuer: 'token issuer is not accepted',
  audience: 'token audience is not accepted',
  scope: 'token scope is not accepted',
  inactive: 'token is not active',
  principal: 'token does not match the user',
  unavailable: 'token cannot be validated at the moment',
};

/** RFC 6750's b64token: the characters a bearer token may have. */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** A token's claims (a JWT payload or an introspection answer). */
export type Claims = Readonly<Record<string, unknown>>;

/** A token that passed every check of its validator. */
export interface ValidToken {
  claims: Claims;
  /** The principal claim's value (`sub` unless configured). */
  principal: string;
  /** From `exp`; null when the token has none (only with `require_exp: false`). */
  expiresAt: Date | null;
}

/** A validator's answer. */
export type TokenResult =
  | { ok: true; token: ValidToken }
  | { ok: false; problem: TokenProblem; reason: string };

/** Shorthand for a failed result. */
export function tokenProblem(problem: TokenProblem, reason: string): TokenResult {
  return { ok: false, problem, reason };
}

/** A named validator (pgward.yaml `token_validators`). */
export interface TokenValidator {
  readonly name: string;
  /** Checks a token; never rejects (an unreachable IdP is the `unavailable` problem). */
  validate(token: string): Promise<TokenResult>;
  /** Stops background refreshes. */
  close(): void;
}
