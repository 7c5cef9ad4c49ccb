/**
 * CancelMap: the BackendKeyData pgward hands each client, mapped to the upstream backend it stands for.
 * Keys are pgward's own so that a client never learns (or can forge) an upstream key.
 */

import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** What a cancel key stands for. */
export interface CancelTarget {
  /** Cancels the upstream query of this session. */
  cancel(): void;
}

interface Entry {
  secretKey: Buffer;
  target: CancelTarget;
}

/** The issued keys of live sessions. */
export class CancelMap {
  readonly #entries = new Map<number, Entry>();

  /** Issues a fresh key of `keyLength` bytes for a target. */
  issue(target: CancelTarget, keyLength: number): { processId: number; secretKey: Buffer } {
    let processId: number;
    do processId = randomInt(1, 0x7fffffff);
    while (this.#entries.has(processId));
    const secretKey = randomBytes(keyLength);
    this.#entries.set(processId, { secretKey, target });
    return { processId, secretKey };
  }

  /** Forgets a key when its session ends. */
  revoke(processId: number): void {
    this.#entries.delete(processId);
  }

  /** The target for a key, or undefined if the key is unknown or wrong (compared in constant time). */
  find(processId: number, secretKey: Buffer): CancelTarget | undefined {
    const entry = this.#entries.get(processId);
    if (!entry || entry.secretKey.length !== secretKey.length) return undefined;
    return timingSafeEqual(entry.secretKey, secretKey) ? entry.target : undefined;
  }

  /** Number of live keys. */
  get size(): number {
    return this.#entries.size;
  }
}
