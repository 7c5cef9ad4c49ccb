/**
 * `jwt`: the client sends a token as its password (AuthenticationCleartextPassword; on HTTP, the
 * Bearer token answers the same request), the rule's named validator checks it, and the token must be
 * the user's (token-check.ts). Tokens are secrets in clear: hostssl rules only, unless the rule
 * says `allow_cleartext`. The message carrying the token is bounded by limits.max_message_length
 * (64 KiB by default), the token itself by its validator's max_token_bytes.
 */

import { type AuthMethod, askCleartext } from './method.ts';
import { checkToken } from './token-check.ts';

export const jwtMethod: AuthMethod = {
  name: 'jwt',
  async begin(ctx) {
    return askCleartext((token) => checkToken(ctx, token));
  },
};
