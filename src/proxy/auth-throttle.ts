/**
 * Brute-force throttles for authentication: FailureDelays (a growing wait before each further failure
 * answer for one client address and user) and PendingAuthGate (a global cap on connections still
 * authenticating). Pure bookkeeping: no sockets, no logging, no timers except `sleep`; the session and the
 * listener decide what to do with the answers.
 */

import { createHash } from 'node:crypto';
import type { FailureDelayConfig } from '../config/pgward-config.ts';

/**
 * Most (client address, user) keys FailureDelays keeps. Beyond it the least recently failed key is
 * forgotten. Each key costs a fixed size (its name is a SHA-256 digest, whatever the length of the user
 * name), so this bounds the memory to about 16 MB (measured).
 */
export const MAX_FAILURE_KEYS = 100_000;

/** Doublings past which the delay cannot grow (2^30 ms is far above any allowed `maxMs`). */
const MAX_DOUBLINGS = 30;

/** Options of {@link FailureDelays}; the defaults are for production, the others for tests. */
export interface FailureDelaysOptions {
  /** The clock, in milliseconds. */
  now?: () => number;
  /** Most keys kept; {@link MAX_FAILURE_KEYS} unless set. */
  maxKeys?: number;
}

interface FailureEntry {
  failures: number;
  /** When the last failure was recorded. */
  touchedAt: number;
}

/**
 * Failures per client address and user, and the delay owed before answering the next failure.
 *
 * The session, on a failed authentication, asks {@link FailureDelays.delayFor} first, then records the
 * failure with {@link FailureDelays.recordFailure} at once (so that parallel attempts see it), then waits the
 * delay (see {@link sleep}) and only then sends the failure answer. With `after: 5` failures 1 to 5 are
 * answered at once, the 6th after `initialMs`, the 7th after twice that, and so on up to `maxMs`.
 *
 * A key with no failure for `forgetAfterMs` starts again from zero; at most `maxKeys` keys are kept
 * (see {@link MAX_FAILURE_KEYS}), so a flood of distinct keys can push out an older one.
 */
export class FailureDelays {
  #config: FailureDelayConfig;
  readonly #now: () => number;
  readonly #maxKeys: number;
  /** In order of last failure, oldest first (re-inserted on each failure), so the front expires first. */
  readonly #entries = new Map<string, FailureEntry>();

  constructor(config: FailureDelayConfig, options: FailureDelaysOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#maxKeys = options.maxKeys ?? MAX_FAILURE_KEYS;
    if (!Number.isInteger(this.#maxKeys) || this.#maxKeys < 1) {
      throw new RangeError(`maxKeys must be a positive integer, got ${this.#maxKeys}`);
    }
  }

  /**
   * Milliseconds to wait before answering a failure of this key: 0 while fewer than `after` failures are
   * recorded, then `initialMs` doubling with each further failure, capped at `maxMs`.
   */
  delayFor(address: string, user: string): number {
    const failures = this.#live(keyOf(address, user))?.failures ?? 0;
    const { after, initialMs, maxMs } = this.#config;
    if (failures < after) return 0;
    const doublings = Math.min(failures - after, MAX_DOUBLINGS);
    return Math.min(initialMs * 2 ** doublings, maxMs);
  }

  /** Counts one failure of this key. */
  recordFailure(address: string, user: string): void {
    const key = keyOf(address, user);
    const now = this.#now();
    const entry = this.#live(key);
    if (entry) {
      this.#entries.delete(key);
      entry.failures++;
      entry.touchedAt = now;
      this.#entries.set(key, entry);
      return;
    }
    this.#sweep();
    if (this.#entries.size >= this.#maxKeys) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { failures: 1, touchedAt: now });
  }

  /** Forgets this key's failures after a successful authentication. */
  recordSuccess(address: string, user: string): void {
    this.#entries.delete(keyOf(address, user));
  }
  /**
   * Records one login's outcome and returns how long to wait before answering it: 0 for a success
   * (which clears the count), else the delay the failures so far call for.
   */
  settle(address: string, user: string, ok: boolean): number {
    if (ok) {
      this.recordSuccess(address, user);
      return 0;
    }
    const wait = this.delayFor(address, user);
    this.recordFailure(address, user);
    return wait;
  }

  /** Takes a reloaded configuration; recorded failures are kept and judged by the new one. */
  reconfigure(config: FailureDelayConfig): void {
    this.#config = config;
    this.#sweep();
  }

  /** Number of keys with failures not yet forgotten. */
  get size(): number {
    this.#sweep();
    return this.#entries.size;
  }

  /** The entry of a key unless it has expired (an expired one is dropped). */
  #live(key: string): FailureEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry && this.#expired(entry, this.#now())) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #expired(entry: FailureEntry, now: number): boolean {
    return now - entry.touchedAt >= this.#config.forgetAfterMs;
  }

  /** Drops expired entries from the front; amortised O(1) per failure recorded. */
  #sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (!this.#expired(entry, now)) break;
      this.#entries.delete(key);
    }
  }
}

/**
 * A fixed-size name for (address, user) that no two different pairs share: the address length comes
 * first, and UTF-16 code units are hashed as they are (UTF-8 would merge lone surrogates into U+FFFD).
 */
function keyOf(address: string, user: string): string {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(address.length);
  return createHash('sha256')
    .update(length)
    .update(address, 'utf16le')
    .update(user, 'utf16le')
    .digest('base64');
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts: it always resolves, never rejects, so the caller
 * checks `signal.aborted` afterwards to know whether the client is still there. The timer is cleared on
 * abort.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    signal?.addEventListener('abort', finish, { once: true });
  });
}

/** One place in {@link PendingAuthGate}; give it back when authentication ends, whichever way. */
export interface PendingAuthTicket {
  /** Frees the place; calls after the first do nothing. */
  release(): void;
}

/**
 * The cap on connections still negotiating or authenticating (`limits.maxPendingAuth`). The listener
 * refuses a connection it cannot enter with 53300 "sorry, too many clients already".
 */
export class PendingAuthGate {
  #max: number;
  #pending = 0;

  constructor(max: number) {
    this.#max = checkMax(max);
  }

  /** A ticket if fewer than `max` are pending, else null. */
  tryEnter(): PendingAuthTicket | null {
    if (this.#pending >= this.#max) return null;
    this.#pending++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#pending--;
      },
    };
  }

  /** Connections holding a ticket. */
  get pending(): number {
    return this.#pending;
  }

  get max(): number {
    return this.#max;
  }

  /** Takes a reloaded cap; below the current count, new entries are refused until enough leave. */
  setMax(max: number): void {
    this.#max = checkMax(max);
  }
}

function checkMax(max: number): number {
  if (!Number.isInteger(max) || max < 0) throw new RangeError(`max must be an integer >= 0, got ${max}`);
  return max;
}
