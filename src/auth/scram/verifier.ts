/**
 * SCRAM-SHA-256 verifiers in PostgreSQL's stored format
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts): parse, create, and check
 * a cleartext password against one.
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  computeSaltedPassword,
  DEFAULT_SCRAM_ITERATIONS,
  deriveScramKeys,
  SCRAM_SALT_LENGTH,
} from './keys.ts';

/** A parsed SCRAM-SHA-256 verifier. */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const VERIFIER =
  /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;

/** Parses a verifier; returns null if the text is not one. */
export function parseScramVerifier(text: string): ScramVerifier | null {
  const match = VERIFIER.exec(text);
  if (!match) return null;
  const [, iterationsText = '', salt = '', storedKey = '', serverKey = ''] = match;
  const iterations = Number(iterationsText);
  const parsed = {
    iterations,
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
  if (!Number.isSafeInteger(iterations) || iterations < 1) return null;
  if (parsed.storedKey.length !== 32 || parsed.serverKey.length !== 32 || parsed.salt.length === 0)
    return null;
  return parsed;
}

/** Formats a verifier the way PostgreSQL stores it in pg_authid.rolpassword. */
export function formatScramVerifier(verifier: ScramVerifier): string {
  return `SCRAM-SHA-256$${verifier.iterations}:${verifier.salt.toString('base64')}$${verifier.storedKey.toString('base64')}:${verifier.serverKey.toString('base64')}`;
}

/** Builds a verifier for a password with a fresh random salt. */
export async function createScramVerifier(
  password: string,
  iterations = DEFAULT_SCRAM_ITERATIONS,
  salt: Buffer = randomBytes(SCRAM_SALT_LENGTH),
): Promise<ScramVerifier> {
  const { storedKey, serverKey } = deriveScramKeys(await computeSaltedPassword(password, salt, iterations));
  return { iterations, salt, storedKey, serverKey };
}

/** True if the cleartext password produces the verifier's StoredKey (compared in constant time). */
export async function verifyPasswordAgainstScram(
  password: string,
  verifier: ScramVerifier,
): Promise<boolean> {
  const salted = await computeSaltedPassword(password, verifier.salt, verifier.iterations);
  return timingSafeEqual(deriveScramKeys(salted).storedKey, verifier.storedKey);
}
