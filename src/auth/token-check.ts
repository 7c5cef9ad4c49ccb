/**
 * Checks a bearer token for a rule, the part `jwt` and `oauth` share: the rule's named validator
 * verifies it, then it must be the user's (token-identity.ts). A user users.yaml does not define is
 * an external user when the validator has `external_users`: the token must also grant one of the
 * allowed roles, which the session takes upstream. The client learns the class of a failure only;
 * the log gets the reason.
 */

import { grantedRole } from '../tokens/external-users.ts';
import { type AuthContext, type AuthIdentity, type AuthStep, accepted, rejected } from './method.ts';
import { tokenIdentity } from './token-identity.ts';

/** Accepts or rejects `token` for `ctx.user` under the rule's validator. */
export async function checkToken(ctx: AuthContext, token: string): Promise<AuthStep> {
  const name = ctx.rule.options.validator ?? '';
  const validator = ctx.tokenValidators.get(name);
  const config = ctx.validatorConfig(name);
  if (!validator || !config)
    return rejected({ kind: 'token', tokenProblem: 'unavailable', reason: `no validator "${name}"` });
  if (token === '') return rejected({ kind: 'token', tokenProblem: 'malformed', reason: 'empty token' });
  const result = await validator.validate(token);
  if (!result.ok)
    return rejected({ kind: 'token', tokenProblem: result.problem, reason: `${name}: ${result.reason}` });
  const valid = result.token;
  const identity = tokenIdentity(valid, ctx);
  if (!identity.ok)
    return rejected({ kind: 'token', tokenProblem: identity.problem, reason: `${name}: ${identity.reason}` });
  const accepting: AuthIdentity = { user: ctx.user, authenticatedAs: identity.authenticatedAs, token: valid };
  // The token stays acceptable for clock_skew_seconds past exp; ending the session sooner would end
  // logins the validator has just let in.
  if (config.endSessionAtExpiry && valid.expiresAt)
    accepting.sessionEndsAt = new Date(valid.expiresAt.getTime() + config.clockSkewSeconds * 1000);
  const external = config.externalUsers;
  if (!external || ctx.isLocalUser(ctx.user)) return accepted(accepting);
  const role = grantedRole(valid.claims, external);
  // The client is told what any principal mismatch tells it: nothing about whether the user is local.
  if (role === null)
    return rejected({
      kind: 'token',
      tokenProblem: 'principal',
      reason: `${name}: external user "${ctx.user}": claim "${external.roleClaim}" grants none of the roles ${external.roles.join(', ')}`,
    });
  return accepted({
    ...accepting,
    role,
    authenticatedAs: `${identity.authenticatedAs}, external user with role "${role}"`,
  });
}
