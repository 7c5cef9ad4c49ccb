/**
 * GET and POST of JSON documents from an identity provider (JWKS, discovery, introspection) with the
 * built-in fetch: a deadline on every request, a size cap on the answer, and errors that say which
 * URL failed and how — never the token or the client secret.
 */

/** Largest document accepted from an IdP. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

/** An IdP request that failed (unreachable, non-2xx, not JSON). */
export class IdpRequestError extends Error {}

/** Fetches `url` and parses its JSON body; throws IdpRequestError. */
export async function fetchJson(url: string, init: RequestInit, timeoutMs: number): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    throw new IdpRequestError(`${url}: ${cause?.message ?? (error as Error).message}`);
  }
  const text = await response.text();
  if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES)
    throw new IdpRequestError(`${url}: answer larger than ${MAX_DOCUMENT_BYTES} bytes`);
  if (!response.ok) throw new IdpRequestError(`${url}: HTTP ${response.status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new IdpRequestError(`${url}: the answer is not JSON`);
  }
}

/** Whether a value is a JSON object (not null, not a list). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
