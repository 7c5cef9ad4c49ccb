/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677), used to log in to the upstream. Without channel
 * binding (GS2 header `n,,`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc5802#section-3
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { computeSaltedPassword, deriveScramKeys, hmac, xor } from '../auth/scram/keys.ts';

/** The mechanism name. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** A SCRAM client exchange in progress. */
export class ScramClient {
  readonly #password: string;
  readonly #nonce: string;
  #serverSignature: Buffer | null = null;

  /** @param nonce the client nonce; random unless a test pins it. */
  constructor(password: string, nonce: string = randomBytes(18).toString('base64')) {
    this.#password = password;
    this.#nonce = nonce;
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
    const keys = deriveScramKeys(await computeSaltedPassword(this.#password, salt, iterations));
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
