/**
 * Reads the `Authorization` header of an HTTP request. Basic credentials (RFC 7617: base64 of
 * `user:password`, UTF-8, the user ends at the first colon) name the user and carry the password that
 * answers a rule's password challenge; a Bearer token (RFC 6750) answers a `jwt` or `oauth` rule.
 * Anything else is refused with a clear 28000, never ignored.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7617
 */

import { bearerToken } from '../auth/oauthbearer.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';

/** What the header says. */
export type Authorization =
  | { scheme: 'none' }
  | { scheme: 'basic'; user: string; password: string }
  /** RFC 6750: a token for the `jwt` and `oauth` methods. */
  | { scheme: 'bearer'; token: string };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function refused(message: string): PgError {
  return new PgError(SqlState.InvalidAuthorizationSpecification, message);
}

/** Parses the header; throws PgError 28000 for a malformed one or an unsupported scheme. */
export function parseAuthorization(header: string | undefined): Authorization {
  if (header === undefined || header.trim() === '') return { scheme: 'none' };
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/.exec(header.trim());
  if (!match) throw refused('malformed Authorization header');
  const scheme = match[1] ?? '';
  if (scheme.toLowerCase() === 'bearer') {
    const bearer = bearerToken(header.trim());
    if ('problem' in bearer) throw refused('malformed Bearer token');
    return { scheme: 'bearer', token: bearer.token };
  }
  if (scheme.toLowerCase() !== 'basic') throw refused(`unsupported authorization scheme "${scheme}"`);
  const encoded = (match[2] ?? '').trim();
  if (encoded === '' || !BASE64.test(encoded) || encoded.length % 4 !== 0)
    throw refused('malformed Basic credentials');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(encoded, 'base64'));
  } catch {
    throw refused('malformed Basic credentials: not UTF-8');
  }
  const colon = text.indexOf(':');
  if (colon < 0) throw refused('malformed Basic credentials: no ":" between user and password');
  const user = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (user === '') throw refused('malformed Basic credentials: the user name is empty');
  if (text.includes('\0')) throw refused('malformed Basic credentials: a NUL character');
  return { scheme: 'basic', user, password };
}
