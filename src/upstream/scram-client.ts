/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677), used to log in to the upstream. Without channel
 * binding (GS2 header `n,,`). Proves either a password, or — for scram-passthrough — the ClientKey a
 * client proved to pgward, which works when the upstream holds the same verifier (same salt and
 * iteration count): the proof needs only ClientKey and StoredKey = H(ClientKey).
 *
 * @see https://www.rfc-editor.org/rfc/rfc5802#section-3
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramClientKeys } from '../auth/method.ts';
import {
  computeSaltedPassword,
  deriveScramKeys,
  hmac,
  type ScramKeys,
  sha256,
  xor,
} from '../auth/scram/keys.ts';

/** The mechanism name. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** A SCRAM client exchange in progress. */
export class ScramClient {
  readonly #secret: { password: string } | { keys: ScramClientKeys };
  readonly #nonce: string;
  #serverSignature: Buffer | null = null;

  /**
   * @param secret the password, or the keys a client proved (scram-passthrough)
   * @param nonce the client nonce; random unless a test pins it.
   */
  constructor(secret: string | ScramClientKeys, nonce: string = randomBytes(18).toString('base64')) {
    this.#secret = typeof secret === 'string' ? { password: secret } : { keys: secret };
    this.#nonce = nonce;
  }

  async #keys(salt: Buffer, iterations: number): Promise<ScramKeys> {
    const secret = this.#secret;
    if ('password' in secret)
      return deriveScramKeys(await computeSaltedPassword(secret.password, salt, iterations));
    const { keys } = secret;
    if (!keys.salt.equals(salt) || keys.iterations !== iterations) {
      throw new Error(
        'SCRAM: the upstream holds a different verifier for this user than the one the client proved (salt or iteration count differ)',
      );
    }
    return { clientKey: keys.clientKey, storedKey: sha256(keys.clientKey), serverKey: keys.serverKey };
  }

  get #clientFirstBare(): string {
    return `n=,r=${this.#nonce}`;
  }

  /** The client-first-message. */
  firstMessage(): string {
    return `n,,${this.#clientFirstBare}`;
  }

  /** Answers the server-first-message with the client-final-message. */
  async finalMessage(serverFirst: string): Promise<string> {
    const attributes = new Map(
      serverFirst.split(',').map((part) => [part.slice(0, 1), part.slice(2)] as const),
    );
    const nonce = attributes.get('r') ?? '';
    const salt = Buffer.from(attributes.get('s') ?? '', 'base64');
    const iterations = Number(attributes.get('i'));
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new Error('SCRAM: server nonce does not extend the client nonce');
    }
    if (salt.length === 0 || !Number.isSafeInteger(iterations) || iterations < 1) {
      throw new Error('SCRAM: malformed server-first-message');
    }
    const finalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${finalWithoutProof}`;
    const keys = await this.#keys(salt, iterations);
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage));
    this.#serverSignature = hmac(keys.serverKey, authMessage);
    return `${finalWithoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final-message's signature; throws if the server did not prove the key. */
  verifyServerFinal(serverFinal: string): void {
    const match = /^v=([A-Za-z0-9+/=]+)$/.exec(serverFinal.trim());
    const signature = Buffer.from(match?.[1] ?? '', 'base64');
    const expected = this.#serverSignature;
    if (!expected || signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw new Error('SCRAM: server signature does not match');
    }
  }
}
