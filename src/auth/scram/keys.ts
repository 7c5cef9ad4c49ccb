/**
 * SCRAM-SHA-256 key derivation (RFC 5802 section 3 with SHA-256, RFC 7677): SaltedPassword,
 * ClientKey, StoredKey, ServerKey. Shared by the server (verifying clients) and the client side
 * (logging in upstream).
 *
 * @see https://www.rfc-editor.org/rfc/rfc5802#section-3
 */

import { createHash, createHmac, pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import { normalizeScramPassword } from './saslprep.ts';

const pbkdf2Async = promisify(pbkdf2);

/** Iteration count PostgreSQL uses by default (scram_iterations). */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** Salt length PostgreSQL generates (SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_SALT_LENGTH = 16;

/** HMAC-SHA-256. */
export function hmac(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** SHA-256. */
export function sha256(data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Bytewise XOR of two equal-length buffers. */
export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/** SaltedPassword := Hi(Normalize(password), salt, i), computed off the event loop. */
export async function computeSaltedPassword(
  password: string,
  salt: Buffer,
  iterations: number,
): Promise<Buffer> {
  return pbkdf2Async(normalizeScramPassword(password), salt, iterations, 32, 'sha256');
}

/** The keys derived from a SaltedPassword. */
export interface ScramKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** ClientKey, StoredKey and ServerKey from a SaltedPassword. */
export function deriveScramKeys(saltedPassword: Buffer): ScramKeys {
  const clientKey = hmac(saltedPassword, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(saltedPassword, 'Server Key') };
}
