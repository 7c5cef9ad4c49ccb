/**
 * The claim checks every validator applies, to a JWT payload or to an introspection answer alike:
 * `exp`, `nbf` and `iat` with a clock skew, `iss` in the accepted list, `aud` meeting the accepted
 * list, one of the accepted scopes (`scope` as a space-separated string, or `scp` as Azure writes
 * it), and the principal claim.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-4.1
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-4.2 (scope)
 */

import { type Claims, type TokenResult, tokenProblem } from './token.ts';

/** What a validator accepts. */
export interface ClaimPolicy {
  /** Accepted `iss` values; null: any. */
  issuers: readonly string[] | null;
  /** Accepted audiences (the token's `aud` must name one); null: no check. */
  audiences: readonly string[] | null;
  /** Accepted scopes (the token must carry one); null: no check. */
  scopes: readonly string[] | null;
  /** The claim naming the principal: `sub`, `preferred_username`, `email`, `username`… */
  principalClaim: string;
  clockSkewSeconds: number;
  /** A token without `exp` is refused. */
  requireExp: boolean;
}

/** The last second a JavaScript Date can hold (8.64e15 ms): later NumericDates are refused. */
const MAX_NUMERIC_DATE = 8.64e12;

function numericDate(claims: Claims, name: string): number | null | 'invalid' {
  const value = claims[name];
  if (value === undefined) return null;
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_NUMERIC_DATE
    ? value
    : 'invalid';
}

/** The scopes a token carries. */
export function scopesOf(claims: Claims): string[] {
  const scope = claims.scope ?? claims.scp;
  if (typeof scope === 'string') return scope.split(' ').filter((s) => s !== '');
  if (Array.isArray(scope)) return scope.filter((s): s is string => typeof s === 'string');
  return [];
}

function audiencesOf(claims: Claims): string[] {
  const aud = claims.aud;
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

/** Applies the policy to a token's claims at `now` (seconds since the epoch). */
export function checkClaims(claims: Claims, policy: ClaimPolicy, now: number): TokenResult {
  const skew = policy.clockSkewSeconds;
  const exp = numericDate(claims, 'exp');
  const nbf = numericDate(claims, 'nbf');
  const iat = numericDate(claims, 'iat');
  if (exp === 'invalid' || nbf === 'invalid' || iat === 'invalid')
    return tokenProblem(
      'malformed',
      'exp, nbf or iat is not a NumericDate (a number of seconds a date can hold)',
    );
  if (exp === null && policy.requireExp) return tokenProblem('malformed', 'the token has no exp claim');
  if (exp !== null && exp <= now - skew) return tokenProblem('expired', `exp ${exp} is past (now ${now})`);
  if (nbf !== null && nbf > now + skew)
    return tokenProblem('not-yet-valid', `nbf ${nbf} is ahead (now ${now})`);
  if (iat !== null && iat > now + skew)
    return tokenProblem('issued-in-future', `iat ${iat} is ahead (now ${now})`);
  const iss = claims.iss;
  if (policy.issuers && (typeof iss !== 'string' || !policy.issuers.includes(iss)))
    return tokenProblem('issuer', `iss ${JSON.stringify(iss)} is not one of ${policy.issuers.join(', ')}`);
  if (policy.audiences) {
    const audiences = audiencesOf(claims);
    if (!audiences.some((aud) => policy.audiences?.includes(aud)))
      return tokenProblem(
        'audience',
        `aud ${JSON.stringify(claims.aud)} names none of ${policy.audiences.join(', ')}`,
      );
  }
  if (policy.scopes) {
    const scopes = scopesOf(claims);
    if (!scopes.some((scope) => policy.scopes?.includes(scope)))
      return tokenProblem(
        'scope',
        `scopes [${scopes.join(' ')}] include none of ${policy.scopes.join(', ')}`,
      );
  }
  const principal = claims[policy.principalClaim];
  if (typeof principal !== 'string' || principal === '')
    return tokenProblem(
      'principal',
      `the token has no "${policy.principalClaim}" claim (a non-empty string)`,
    );
  return { ok: true, token: { claims, principal, expiresAt: exp === null ? null : new Date(exp * 1000) } };
}
