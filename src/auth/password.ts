/**
 * `password`: asks for the cleartext password (AuthenticationCleartextPassword) and checks it against
 * the user's stored credentials: the SCRAM verifier, else the md5 hash. Unknown users, and users with
 * neither, fail exactly like a wrong password, after the same work (a decoy verifier's key derivation).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { StoredCredentials } from '../credentials/credentials.ts';
import { type AuthMethod, accepted, askCleartext, rejected } from './method.ts';
import { createScramVerifier, verifyPasswordAgainstScram } from './scram/verifier.ts';

/** A verifier no password matches, checked for unknown users so they cost the same time. */
const decoyVerifier = createScramVerifier(`decoy-${process.pid}-${Date.now()}`);

/** PostgreSQL's md5 form of a password: `md5` + md5(password ‖ user). */
export function md5PasswordHash(password: string, user: string): string {
  return `md5${createHash('md5')
    .update(password + user)
    .digest('hex')}`;
}

async function matches(
  password: string,
  user: string,
  stored: StoredCredentials | undefined,
): Promise<boolean> {
  if (stored?.scram) return verifyPasswordAgainstScram(password, stored.scram);
  if (stored?.md5)
    return timingSafeEqual(Buffer.from(md5PasswordHash(password, user)), Buffer.from(stored.md5));
  await verifyPasswordAgainstScram(password, await decoyVerifier);
  return false;
}

export const passwordMethod: AuthMethod = {
  name: 'password',
  async begin(ctx) {
    return askCleartext(async (password) => {
      if (password === '') return rejected({ kind: 'password', reason: 'empty password returned by client' });
      const stored = await ctx.credentials.lookup(ctx.user);
      const ok = await matches(password, ctx.user, stored);
      if (!stored)
        return rejected({ kind: 'password', reason: `user "${ctx.user}" has no stored credentials` });
      if (!ok) return rejected({ kind: 'password', reason: 'password does not match' });
      return accepted({ user: ctx.user, authenticatedAs: ctx.user, cleartextPassword: password });
    });
  },
};
