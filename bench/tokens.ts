/**
 * Token verification throughput: RS256 JWTs per second through pgward's JwtValidator with its key
 * cached (the path every jwt login takes once the key set is fetched), side by side with jose's
 * compactVerify alone and node:crypto's verify alone, in one run on one core. Prints each rate and
 * the ratios. Not a test: it measures and prints.
 *
 * Environment: BENCH_TOKEN_SECONDS (per column, default 3).
 */

import { createPublicKey, createVerify, generateKeyPairSync } from 'node:crypto';
import { compactVerify, type JWK, SignJWT } from 'jose';
import { JwtValidator } from '../src/tokens/jwt-validator.ts';
import { staticKeySource } from '../src/tokens/key-source.ts';

const SECONDS = Number(process.env.BENCH_TOKEN_SECONDS ?? 3);

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'bench', alg: 'RS256', use: 'sig' } as JWK;
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({
  sub: 'alice',
  iss: 'https://idp',
  aud: 'pgward',
  scope: 'db',
  iat: now,
  exp: now + 3600,
})
  .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
  .sign(privateKey);

const validator = new JwtValidator(
  'bench',
  { kind: 'jwks', source: staticKeySource([jwk]) },
  {
    algorithms: ['RS256'],
    maxTokenBytes: 32768,
    policy: {
      issuers: ['https://idp'],
      audiences: ['pgward'],
      scopes: ['db'],
      principalClaim: 'sub',
      clockSkewSeconds: 60,
      requireExp: true,
    },
  },
);
const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
const [head, payload, signature] = token.split('.');
const signingInput = `${head}.${payload}`;
const signatureBytes = Buffer.from(signature ?? '', 'base64url');

/** Runs `once` back to back for SECONDS; returns operations per second. */
async function rate(once: () => Promise<boolean> | boolean): Promise<number> {
  for (let i = 0; i < 200; i++) if (!(await once())) throw new Error('verification failed');
  const end = performance.now() + SECONDS * 1000;
  let count = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await once();
    count += 100;
  }
  return count / ((performance.now() - start) / 1000);
}

const columns: [string, () => Promise<boolean> | boolean][] = [
  ['pgward JwtValidator (cached key)', async () => (await validator.validate(token)).ok],
  ['jose compactVerify alone', async () => (await compactVerify(token, key)).payload.length > 0],
  [
    'node:crypto verify alone',
    () => createVerify('RSA-SHA256').update(signingInput).verify(key, signatureBytes),
  ],
];
const results: [string, number][] = [];
for (const [name, once] of columns) results.push([name, await rate(once)]);
const base = results[2]?.[1] ?? 1;
console.log(`RS256 (2048-bit) verifications per second, one core, ${SECONDS} s each:`);
for (const [name, perSecond] of results)
  console.log(
    `  ${name.padEnd(34)} ${Math.round(perSecond).toString().padStart(7)} /s  (${(perSecond / base).toFixed(3)} of node:crypto)`,
  );
