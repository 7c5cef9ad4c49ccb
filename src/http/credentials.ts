/**
 * What an HTTP request's credentials mean for the shared authentication phase: who the request is for,
 * how the request answers a rule's challenge in its client's stead, and the 401 challenge to send back.
 */

import { decodeJwt } from 'jose';
import { encodeClientResponse, KVSEP, OAUTHBEARER } from '../auth/oauthbearer.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import type { HbaRule } from '../hba/rule.ts';
import type { ChallengeTransport } from '../proxy/authenticate.ts';
import type { Runtime } from '../proxy/runtime.ts';
import type { PeerCertificate } from '../tls/peer-certificate.ts';
import { TOKEN_PROBLEM_MESSAGES } from '../tokens/token.ts';
import { AuthCode, authenticationCodeOf } from '../wire/backend.ts';
import { encodePasswordMessageBody, encodeSaslInitialResponseBody } from '../wire/frontend.ts';
import type { Authorization } from './authorization.ts';

/** A rule's method that cannot use the request's credentials. */
function unusable(rule: HbaRule, what: string): PgError {
  return new PgError(
    SqlState.InvalidAuthorizationSpecification,
    `method "${rule.method}" of the matching rule cannot use ${what}`,
  );
}

/**
 * Answers a rule's challenge from the request, as a client would: the Basic password answers a
 * cleartext request; a Bearer token answers a `jwt` rule's cleartext request, an `oauth` rule's
 * AuthenticationSASL (OAUTHBEARER with `auth=Bearer <token>`) and its error challenge (the kvsep).
 */
export function challengeTransport(authorization: Authorization): ChallengeTransport {
  return async (challenge, rule) => {
    const code = authenticationCodeOf(challenge.message);
    if (authorization.scheme === 'bearer') {
      const token = authorization.token;
      if (rule.method === 'jwt' && code === AuthCode.CleartextPassword)
        return encodePasswordMessageBody(token);
      if (rule.method === 'oauth' && code === AuthCode.SASL)
        return encodeSaslInitialResponseBody(OAUTHBEARER, encodeClientResponse(`Bearer ${token}`));
      if (rule.method === 'oauth' && code === AuthCode.SASLContinue) return Buffer.from([KVSEP]);
      throw unusable(rule, 'a Bearer token');
    }
    if (code !== AuthCode.CleartextPassword) throw unusable(rule, 'HTTP Basic credentials');
    if (authorization.scheme !== 'basic') {
      throw new PgError(SqlState.InvalidPassword, 'no password supplied', {
        hint: 'Send the password with HTTP Basic authentication.',
      });
    }
    return encodePasswordMessageBody(authorization.password);
  };
}

/**
 * Who a request is for: the Basic user; for a Bearer token, `?user=`, else the users.yaml user whose
 * token binding names the token's `iss` and `username` (CrateDB), else its `sub`. The token is only
 * read here to choose the user; the rule's validator checks it, and that it is the user's, afterwards.
 * Without credentials: the client certificate's CN, else `http.default_user`.
 */
export function userOf(
  runtime: Runtime,
  authorization: Authorization,
  url: URL,
  peerCertificate: PeerCertificate | null,
): string | null {
  switch (authorization.scheme) {
    case 'basic':
      return authorization.user;
    case 'bearer': {
      const named = url.searchParams.get('user');
      if (named) return named;
      const claims = unverifiedClaims(authorization.token);
      const iss = claims?.iss;
      const username = claims?.username;
      if (typeof iss === 'string' && typeof username === 'string') {
        const bound = runtime.users.findByToken(iss, username);
        if (bound) return bound.name;
      }
      return typeof claims?.sub === 'string' && claims.sub !== '' ? claims.sub : null;
    }
    case 'none':
      return peerCertificate?.commonName ?? runtime.config.http.defaultUser;
  }
}

/** A JWT's payload, read without checking anything (null for an opaque token). */
function unverifiedClaims(token: string): Record<string, unknown> | null {
  try {
    const claims: unknown = decodeJwt(token);
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const TOKEN_FAILURES: ReadonlySet<string> = new Set(Object.values(TOKEN_PROBLEM_MESSAGES));

/**
 * The WWW-Authenticate challenge of a 401: Bearer (RFC 6750) for a request that sent a token, with
 * `error="invalid_token"` only when the token itself failed (a client may then drop it; a missing
 * rule or an unusable method says nothing against the token).
 */
export function authenticateHeader(authorization: string | undefined, error: PgError): string {
  if (!/^\s*bearer\b/i.test(authorization ?? '')) return 'Basic realm="pgward", charset="UTF-8"';
  return TOKEN_FAILURES.has(error.message)
    ? 'Bearer realm="pgward", error="invalid_token"'
    : 'Bearer realm="pgward"';
}
