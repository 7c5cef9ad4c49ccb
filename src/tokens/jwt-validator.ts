/**
 * Validates a JWT (JWS compact form) against a key source and a claim policy:
 * size → shape → header `alg` in the validator's allow-list (`none` and HMAC are never in it, so a
 * public key can never serve as an HMAC secret) → the key (by `kid`; a JWK whose own `alg` differs from
 * the header's is refused, seed 004) → the signature (jose's compactVerify) → the claims (claims.ts).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7515 (JWS), https://www.rfc-editor.org/rfc/rfc7517 (JWK)
 * @see https://www.rfc-editor.org/rfc/rfc8725 (JWT best current practices)
 */

import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, errors, type JWK } from 'jose';
import { type ClaimPolicy, checkClaims } from './claims.ts';
import type { KeySource } from './key-source.ts';
import { type TokenResult, type TokenValidator, tokenProblem } from './token.ts';

/** Asymmetric JWS algorithms a validator may accept. */
export const JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Whether a JWK can verify `alg` (key type and curve). */
function fits(jwk: JWK, alg: string): boolean {
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA';
  if (alg === 'ES256') return jwk.kty === 'EC' && jwk.crv === 'P-256';
  if (alg === 'ES384') return jwk.kty === 'EC' && jwk.crv === 'P-384';
  if (alg === 'ES512') return jwk.kty === 'EC' && jwk.crv === 'P-521';
  if (alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  if (alg === 'EdDSA') return jwk.kty === 'OKP' && (jwk.crv === 'Ed25519' || jwk.crv === 'Ed448');
  return false;
}

/** Where a JWT validator's key comes from: a key set, or one PEM key (Vertica's jwt_rsa_public_key). */
export type JwtKeys = { kind: 'jwks'; source: KeySource } | { kind: 'pem'; key: KeyObject };

/** The settings of a JWT validator. */
export interface JwtValidatorOptions {
  algorithms: readonly JwsAlgorithm[];
  policy: ClaimPolicy;
  maxTokenBytes: number;
}

/** A JWT validator. */
export class JwtValidator implements TokenValidator {
  readonly name: string;
  readonly #keys: JwtKeys;
  readonly #options: JwtValidatorOptions;
  /** Imported keys, per JWK object of the current set (a new set brings new objects). */
  readonly #imported = new WeakMap<JWK, KeyObject>();

  constructor(name: string, keys: JwtKeys, options: JwtValidatorOptions) {
    this.name = name;
    this.#keys = keys;
    this.#options = options;
  }

  close(): void {
    if (this.#keys.kind === 'jwks') this.#keys.source.close();
  }

  async validate(token: string): Promise<TokenResult> {
    try {
      return await this.#validate(token);
    } catch (error) {
      // A key the IdP published that node:crypto cannot import, or the like: never the client's fault.
      return tokenProblem('unavailable', `validator ${this.name}: ${(error as Error).message}`);
    }
  }

  async #validate(token: string): Promise<TokenResult> {
    const { maxTokenBytes, algorithms, policy } = this.#options;
    if (Buffer.byteLength(token) > maxTokenBytes)
      return tokenProblem('too-large', `${Buffer.byteLength(token)} bytes, more than ${maxTokenBytes}`);
    if (!COMPACT_JWS.test(token)) return tokenProblem('malformed', 'not a JWS in compact form');
    let alg: string;
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (typeof header.alg !== 'string') return tokenProblem('malformed', 'the header has no alg');
      alg = header.alg;
      kid = typeof header.kid === 'string' ? header.kid : undefined;
    } catch (error) {
      return tokenProblem('malformed', `unreadable header: ${(error as Error).message}`);
    }
    if (!(algorithms as readonly string[]).includes(alg))
      return tokenProblem('algorithm', `alg "${alg}" is not one of ${algorithms.join(', ')}`);
    const keys = await this.#candidates(alg, kid);
    if (!Array.isArray(keys)) return keys;
    let payload: Uint8Array | null = null;
    for (const key of keys) {
      try {
        payload = (await compactVerify(token, key, { algorithms: [alg] })).payload;
        break;
      } catch (error) {
        if (error instanceof errors.JWSSignatureVerificationFailed) continue;
        return tokenProblem('malformed', `cannot verify: ${(error as Error).message}`);
      }
    }
    if (!payload) return tokenProblem('signature', `no key${kid ? ` "${kid}"` : ''} verifies the signature`);
    let claims: unknown;
    try {
      claims = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return tokenProblem('malformed', 'the payload is not JSON');
    }
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
      return tokenProblem('malformed', 'the payload is not a JSON object');
    return checkClaims(claims as Record<string, unknown>, policy, Math.floor(Date.now() / 1000));
  }

  /** The keys that may have signed a token with this header, or the problem. */
  async #candidates(alg: string, kid: string | undefined): Promise<KeyObject[] | TokenResult> {
    if (this.#keys.kind === 'pem') return [this.#keys.key];
    const source = this.#keys.source;
    let set: readonly JWK[];
    try {
      set = await source.keys();
    } catch (error) {
      return tokenProblem('unavailable', `no key set: ${(error as Error).message}`);
    }
    let found = select(set, alg, kid);
    // A kid the set does not have may be a key the IdP just rotated in: fetch once (rate-limited).
    if (
      found.length === 0 &&
      kid !== undefined &&
      !set.some((jwk) => jwk.kid === kid) &&
      (await source.refresh())
    )
      found = select(await source.keys(), alg, kid);
    if (found.length === 0) {
      const named = kid === undefined ? set : set.filter((jwk) => jwk.kid === kid);
      const mismatch = named.find((jwk) => typeof jwk.alg === 'string' && jwk.alg !== alg);
      if (mismatch)
        return tokenProblem(
          'algorithm',
          `the header says "${alg}", key "${mismatch.kid}" says "${mismatch.alg}"`,
        );
      return tokenProblem(
        'unknown-key',
        kid === undefined ? `no key fits "${alg}"` : `no key "${kid}" for "${alg}"`,
      );
    }
    return found.map((jwk) => this.#import(jwk));
  }

  #import(jwk: JWK): KeyObject {
    let key = this.#imported.get(jwk);
    if (!key) {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      this.#imported.set(jwk, key);
    }
    return key;
  }
}

/** The JWKs a token may have been signed with: same kid (when it names one), fit for alg and, when they say, of that alg. */
function select(set: readonly JWK[], alg: string, kid: string | undefined): JWK[] {
  return set.filter(
    (jwk) =>
      (kid === undefined || jwk.kid === kid) &&
      fits(jwk, alg) &&
      (typeof jwk.alg !== 'string' || jwk.alg === alg),
  );
}
