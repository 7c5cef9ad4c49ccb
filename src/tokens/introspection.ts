/**
 * RFC 7662 token introspection (Vertica `validate_type: IDP`): the token is POSTed to the IdP with
 * pgward's client id and secret (HTTP Basic, client_secret_basic), and the IdP's answer decides:
 * `active: false` is the `inactive` problem; an active answer's claims go through the same claim
 * checks as a JWT's. Opaque tokens work this way; no key material is needed. With `cache_ms`, an
 * active answer is reused for that long (never past the token's `exp`): fewer IdP calls, at the price
 * of a revocation taking up to that long to bite; inactive answers are never kept.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662
 */

import { createHash } from 'node:crypto';
import { type ClaimPolicy, checkClaims } from './claims.ts';
import { fetchJson, isJsonObject } from './http-json.ts';
import { B64TOKEN, type TokenResult, type TokenValidator, tokenProblem } from './token.ts';

/** The settings of an introspection validator. */
export interface IntrospectionOptions {
  /** The endpoint, or how to find it (discovery). */
  endpoint: () => Promise<string>;
  clientId: string;
  clientSecret: string;
  policy: ClaimPolicy;
  maxTokenBytes: number;
  timeoutMs: number;
  /** How long an active answer is reused (0: every login asks the IdP). */
  cacheMs: number;
}

/** Most answers kept; past this, the oldest goes. */
const MAX_CACHED_ANSWERS = 10_000;

/** Client credentials as RFC 6749 §2.3.1 wants them in Basic: each form-urlencoded first. */
function basicCredentials(id: string, secret: string): string {
  const encode = (text: string) => encodeURIComponent(text).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

/** A validator asking the IdP about each token. */
export class IntrospectionValidator implements TokenValidator {
  readonly name: string;
  readonly #options: IntrospectionOptions;
  /** Active answers by the token's SHA-256 (never the token itself), until they may be reused. */
  readonly #cache = new Map<string, { claims: Record<string, unknown>; until: number }>();

  constructor(name: string, options: IntrospectionOptions) {
    this.name = name;
    this.#options = options;
  }

  close(): void {
    this.#cache.clear();
  }

  /** Keeps an active answer until the earlier of cache_ms and the token's own `exp`. */
  #remember(key: string, claims: Record<string, unknown>): void {
    const now = Date.now();
    const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : Number.POSITIVE_INFINITY;
    const until = Math.min(now + this.#options.cacheMs, exp);
    if (until <= now) return;
    // First in, first out: the oldest answer is the nearest to its end anyway (expired ones are
    // dropped when next looked up).
    if (this.#cache.size >= MAX_CACHED_ANSWERS) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, { claims, until });
  }

  async validate(token: string): Promise<TokenResult> {
    const { maxTokenBytes, policy, timeoutMs } = this.#options;
    if (Buffer.byteLength(token) > maxTokenBytes)
      return tokenProblem('too-large', `${Buffer.byteLength(token)} bytes, more than ${maxTokenBytes}`);
    if (!B64TOKEN.test(token)) return tokenProblem('malformed', 'not a bearer token (RFC 6750 characters)');
    const now = Math.floor(Date.now() / 1000);
    const key = this.#options.cacheMs > 0 ? createHash('sha256').update(token).digest('base64url') : null;
    const cached = key === null ? undefined : this.#cache.get(key);
    if (cached && cached.until > Date.now()) return checkClaims(cached.claims, policy, now);
    if (cached && key !== null) this.#cache.delete(key);
    let answer: unknown;
    try {
      const endpoint = await this.#options.endpoint();
      answer = await fetchJson(
        endpoint,
        {
          method: 'POST',
          headers: {
            authorization: basicCredentials(this.#options.clientId, this.#options.clientSecret),
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
          },
          body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        },
        timeoutMs,
      );
    } catch (error) {
      return tokenProblem('unavailable', `introspection failed: ${(error as Error).message}`);
    }
    if (!isJsonObject(answer) || typeof answer.active !== 'boolean')
      return tokenProblem('unavailable', 'the introspection answer has no "active"');
    if (!answer.active) return tokenProblem('inactive', 'the IdP says the token is not active');
    if (key !== null) this.#remember(key, answer);
    return checkClaims(answer, policy, now);
  }
}
