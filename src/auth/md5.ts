/**
 * `md5`: PostgreSQL's legacy challenge (AuthenticationMD5Password with a random 4-byte salt; the
 * client answers `md5` + md5(md5(password ‖ user) ‖ salt)), used only for users whose stored secret
 * is an md5 hash. As in PostgreSQL, a user with a SCRAM verifier, and an unknown user, get the SCRAM
 * exchange instead (real or mock), so the rule never weakens a SCRAM user's login.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { encodeAuthenticationMD5Password } from '../wire/backend.ts';
import { parsePasswordMessage } from '../wire/frontend.ts';
import { type AuthMethod, accepted, rejected } from './method.ts';
import { scramExchange } from './scram-sha-256.ts';

/** The answer a client holding the password (or its md5 hash) gives to a salt. */
export function md5SaltedResponse(storedHash: string, salt: Buffer): string {
  const inner = storedHash.slice('md5'.length);
  return `md5${createHash('md5')
    .update(Buffer.concat([Buffer.from(inner), salt]))
    .digest('hex')}`;
}

export const md5Method: AuthMethod = {
  name: 'md5',
  async begin(ctx) {
    const stored = await ctx.credentials.lookup(ctx.user);
    const hash = stored?.md5;
    if (stored?.scram || hash === undefined) return scramExchange(ctx, stored);
    const salt = randomBytes(4);
    return {
      kind: 'challenge',
      message: encodeAuthenticationMD5Password(salt),
      async next(reply) {
        const answer = Buffer.from(parsePasswordMessage(reply));
        const expected = Buffer.from(md5SaltedResponse(hash, salt));
        if (answer.length !== expected.length || !timingSafeEqual(answer, expected))
          return rejected({ kind: 'password', reason: 'md5 response does not match' });
        return accepted({ user: ctx.user, authenticatedAs: ctx.user });
      },
    };
  },
};
