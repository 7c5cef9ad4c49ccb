/**
 * `jwt`: the client sends a token as its password (AuthenticationCleartextPassword; on HTTP, the
 * Bearer token answers the same request), the rule's named validator checks it, and the token must be
 * the user's (token-identity.ts). Tokens are secrets in clear: hostssl rules only, unless the rule
 * says `allow_cleartext`. The message carrying the token is bounded by limits.max_message_length
 * (64 KiB by default), the token itself by its validator's max_token_bytes.
 */

import { type AuthMethod, accepted, askCleartext, rejected } from './method.ts';
import { tokenIdentity } from './token-identity.ts';

export const jwtMethod: AuthMethod = {
  name: 'jwt',
  async begin(ctx) {
    return askCleartext(async (token) => {
      const name = ctx.rule.options.validator ?? '';
      const validator = ctx.tokenValidators.get(name);
      if (!validator)
        return rejected({ kind: 'token', tokenProblem: 'unavailable', reason: `no validator "${name}"` });
      if (token === '') return rejected({ kind: 'token', tokenProblem: 'malformed', reason: 'empty token' });
      const result = await validator.validate(token);
      if (!result.ok)
        return rejected({ kind: 'token', tokenProblem: result.problem, reason: `${name}: ${result.reason}` });
      const identity = tokenIdentity(result.token, ctx);
      if (!identity.ok)
        return rejected({
          kind: 'token',
          tokenProblem: identity.problem,
          reason: `${name}: ${identity.reason}`,
        });
      return accepted({ user: ctx.user, authenticatedAs: identity.authenticatedAs, token: result.token });
    });
  },
};
