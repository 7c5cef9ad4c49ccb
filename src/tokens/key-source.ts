/**
 * Where a JWT validator's keys come from: a JWKS fixed at load (a file, inline), or a JWKS URL.
 *
 * The remote set is PgBouncer-careful about its IdP: fetched once on first use, refreshed in the
 * background every `refreshMs`, and refetched at once when a token names an unknown `kid` — at most
 * once per `cooldownMs`, so a stream of forged kids cannot hammer the IdP. A failed fetch keeps the
 * last good set: tokens signed with known keys keep verifying while the IdP is down (jose's remote set
 * stops verifying everything once its cache age passes; this one never drops a set it cannot replace).
 */

import type { JWK } from 'jose';
import type { Logger } from 'pino';
import { fetchJson, isJsonObject } from './http-json.ts';

/** A set of public keys. */
export interface KeySource {
  /** The current keys; rejects only when no set was ever obtained. */
  keys(): Promise<readonly JWK[]>;
  /** Asks for a newer set after a `kid` miss; resolves true when one arrived. */
  refresh(): Promise<boolean>;
  close(): void;
}

/** Reads the `keys` of a JWKS document; throws on anything else. */
export function parseJwks(document: unknown, where: string): JWK[] {
  if (!isJsonObject(document) || !Array.isArray(document.keys))
    throw new Error(`${where}: not a JWKS document (no "keys" list)`);
  const keys = document.keys.filter(isJsonObject) as JWK[];
  if (keys.length === 0) throw new Error(`${where}: the JWKS has no keys`);
  for (const key of keys) {
    if ('d' in key || 'p' in key || 'k' in key)
      throw new Error(`${where}: the JWKS holds a private or symmetric key; publish public keys only`);
  }
  return keys;
}

/** A key set fixed at load. */
export function staticKeySource(keys: JWK[]): KeySource {
  return { keys: async () => keys, refresh: async () => false, close: () => {} };
}

/** Settings of a remote JWKS. */
export interface RemoteJwksOptions {
  refreshMs: number;
  cooldownMs: number;
  timeoutMs: number;
  log: Logger;
}

/** A JWKS fetched from a URL (or a URL found later, by discovery). */
export class RemoteJwks implements KeySource {
  readonly #url: () => Promise<string>;
  readonly #options: RemoteJwksOptions;
  #keys: JWK[] | null = null;
  #inFlight: Promise<boolean> | null = null;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** @param url the JWKS URL, or how to find it (OIDC discovery) */
  constructor(url: string | (() => Promise<string>), options: RemoteJwksOptions) {
    this.#url = typeof url === 'string' ? async () => url : url;
    this.#options = options;
  }

  async keys(): Promise<readonly JWK[]> {
    if (this.#keys) return this.#keys;
    await this.#fetch();
    if (!this.#keys) throw new Error('no key set could be fetched yet');
    return this.#keys;
  }

  async refresh(): Promise<boolean> {
    if (Date.now() - this.#lastAttempt < this.#options.cooldownMs) return false;
    return this.#fetch();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Fetches once (concurrent callers share it); resolves true when a set arrived. */
  #fetch(): Promise<boolean> {
    this.#inFlight ??= this.#load().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #load(): Promise<boolean> {
    this.#lastAttempt = Date.now();
    const { log, timeoutMs } = this.#options;
    let url = '(not discovered)';
    try {
      url = await this.#url();
      this.#keys = parseJwks(await fetchJson(url, {}, timeoutMs), url);
      log.debug({ url, keys: this.#keys.length }, 'JWKS fetched');
      return true;
    } catch (error) {
      log.warn(
        { url, err: (error as Error).message, keeping: this.#keys?.length ?? 0 },
        'JWKS fetch failed; the last good key set stays in use',
      );
      return false;
    } finally {
      this.#schedule();
    }
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#fetch(), this.#options.refreshMs);
    this.#timer.unref();
  }
}
