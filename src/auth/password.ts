/**
 * `password`: asks for the cleartext password (AuthenticationCleartextPassword) and checks it against
 * the user's stored SCRAM verifier. Unknown users and users without a verifier fail exactly like a
 * wrong password.
 */

import { encodeAuthenticationCleartextPassword } from '../wire/backend.ts';
import { parsePasswordMessage } from '../wire/frontend.ts';
import { type AuthMethod, accepted, rejected } from './method.ts';
import { createScramVerifier, verifyPasswordAgainstScram } from './scram/verifier.ts';

/** A verifier no password matches, checked for unknown users so they cost the same time. */
const decoyVerifier = createScramVerifier(`decoy-${process.pid}-${Date.now()}`);

export const passwordMethod: AuthMethod = {
  name: 'password',
  async begin(ctx) {
    return {
      kind: 'challenge',
      message: encodeAuthenticationCleartextPassword(),
      async next(reply) {
        const password = parsePasswordMessage(reply);
        const verifier = ctx.users.find(ctx.user)?.scram;
        if (password === '')
          return rejected({ kind: 'password', reason: 'empty password returned by client' });
        const ok = await verifyPasswordAgainstScram(password, verifier ?? (await decoyVerifier));
        if (!verifier)
          return rejected({ kind: 'password', reason: `user "${ctx.user}" has no stored verifier` });
        if (!ok) return rejected({ kind: 'password', reason: 'password does not match' });
        return accepted({ user: ctx.user, authenticatedAs: ctx.user, cleartextPassword: password });
      },
    };
  },
};
