/**
 * OpenID Connect discovery: the issuer, JWKS URL and introspection endpoint an IdP publishes at
 * `/.well-known/openid-configuration`. Fetched on first use; a failure is retried on the next use (at
 * most once per cooldown), and a document once read stays until the configuration reloads.
 *
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
 */

import { fetchJson, isJsonObject } from './http-json.ts';

/** What pgward reads from a discovery document. */
export interface ProviderMetadata {
  issuer: string;
  jwksUri: string | null;
  introspectionEndpoint: string | null;
}

function optionalUrl(document: Record<string, unknown>, key: string, where: string): string | null {
  const value = document[key];
  if (value === undefined) return null;
  if (typeof value !== 'string' || !URL.canParse(value)) throw new Error(`${where}: "${key}" is not a URL`);
  return value;
}

/** Reads a discovery document. */
export function parseProviderMetadata(document: unknown, where: string): ProviderMetadata {
  if (!isJsonObject(document)) throw new Error(`${where}: not a JSON object`);
  const issuer = document.issuer;
  if (typeof issuer !== 'string' || issuer === '') throw new Error(`${where}: no "issuer"`);
  return {
    issuer,
    jwksUri: optionalUrl(document, 'jwks_uri', where),
    introspectionEndpoint: optionalUrl(document, 'introspection_endpoint', where),
  };
}

/** A discovery document, fetched once. */
export class Discovery {
  readonly #url: string;
  readonly #timeoutMs: number;
  readonly #cooldownMs: number;
  #metadata: ProviderMetadata | null = null;
  #inFlight: Promise<ProviderMetadata> | null = null;
  #failedAt = Number.NEGATIVE_INFINITY;
  #lastError = '';

  constructor(url: string, timeoutMs: number, cooldownMs: number) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
    this.#cooldownMs = cooldownMs;
  }

  /** The metadata; rejects while the document cannot be read. */
  metadata(): Promise<ProviderMetadata> {
    if (this.#metadata) return Promise.resolve(this.#metadata);
    if (Date.now() - this.#failedAt < this.#cooldownMs)
      return Promise.reject(new Error(`discovery failed recently: ${this.#lastError}`));
    this.#inFlight ??= fetchJson(this.#url, {}, this.#timeoutMs)
      .then((document) => {
        this.#metadata = parseProviderMetadata(document, this.#url);
        return this.#metadata;
      })
      .catch((error: Error) => {
        this.#failedAt = Date.now();
        this.#lastError = error.message;
        throw error;
      })
      .finally(() => {
        this.#inFlight = null;
      });
    return this.#inFlight;
  }
}
