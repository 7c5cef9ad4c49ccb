/**
 * Checks a bearer token for a rule, the part `jwt` and `oauth` share: the rule's named validator
 * verifies it, then it must be the user's (token-identity.ts). The client learns the class of a
 * failure only; the log gets the reason.
 */

import { type AuthContext, type AuthStep, accepted, rejected } from './method.ts';
import { tokenIdentity } from './token-identity.ts';

/** Accepts or rejects `token` for `ctx.user` under the rule's validator. */
export async function checkToken(ctx: AuthContext, token: string): Promise<AuthStep> {
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
    return rejected({ kind: 'token', tokenProblem: identity.problem, reason: `${name}: ${identity.reason}` });
  return accepted({ user: ctx.user, authenticatedAs: identity.authenticatedAs, token: result.token });
}
