/**
 * Whose token is it: binds a validated token to the user a client asked to be.
 *
 * - A local user with a token binding (users.yaml `jwt: {validator, iss, username, aud}`, CrateDB's
 *   per-user JWT properties): the rule's validator must be the user's, and each of `iss`, `username`
 *   (the token's `username` claim) and `aud` that the binding sets must match; without `username`,
 *   the principal must still be the user.
 * - Anyone else: the token's principal (the validator's principal claim) must be the user, or map to it
 *   through the rule's ident map.
 */

import type { UserTokenBinding } from '../credentials/users-file.ts';
import { mapIdentity } from '../hba/ident-map.ts';
import type { TokenProblem, ValidToken } from '../tokens/token.ts';
import type { AuthContext } from './method.ts';

/** Whose the token is, or why it is not the user's. */
export type TokenIdentity =
  | { ok: true; authenticatedAs: string }
  | { ok: false; problem: TokenProblem; reason: string };

function audiences(token: ValidToken): unknown[] {
  const aud = token.claims.aud;
  return Array.isArray(aud) ? aud : [aud];
}

function checkBinding(token: ValidToken, binding: UserTokenBinding, ctx: AuthContext): TokenIdentity | null {
  const validator = ctx.rule.options.validator;
  if (binding.validator !== validator)
    return {
      ok: false,
      problem: 'principal',
      reason: `user "${ctx.user}" takes tokens of validator "${binding.validator}", the rule names "${validator}"`,
    };
  if (binding.iss !== undefined && token.claims.iss !== binding.iss)
    return { ok: false, problem: 'issuer', reason: `iss is not "${binding.iss}" (user "${ctx.user}")` };
  if (binding.aud !== undefined && !audiences(token).includes(binding.aud))
    return {
      ok: false,
      problem: 'audience',
      reason: `aud does not name "${binding.aud}" (user "${ctx.user}")`,
    };
  if (binding.username === undefined) return null;
  if (token.claims.username !== binding.username)
    return {
      ok: false,
      problem: 'principal',
      reason: `claim username ${JSON.stringify(token.claims.username)} is not "${binding.username}" (user "${ctx.user}")`,
    };
  return { ok: true, authenticatedAs: `token username "${binding.username}" (users.yaml binding)` };
}

/** Binds a validated token to `ctx.user`. */
export function tokenIdentity(token: ValidToken, ctx: AuthContext): TokenIdentity {
  const binding = ctx.tokenBindingOf(ctx.user);
  if (binding) {
    const bound = checkBinding(token, binding, ctx);
    if (bound) return bound;
  }
  const principal = token.principal;
  const mapName = ctx.rule.options.map;
  if (mapName === undefined) {
    if (principal === ctx.user) return { ok: true, authenticatedAs: `token principal "${principal}"` };
    return { ok: false, problem: 'principal', reason: `principal "${principal}" is not user "${ctx.user}"` };
  }
  const map = ctx.maps.get(mapName);
  if (!map) return { ok: false, problem: 'principal', reason: `ident map "${mapName}" is not defined` };
  const match = mapIdentity(map, principal, ctx.user, (user) => ctx.groupsOf(user));
  if (!match.ok)
    return {
      ok: false,
      problem: 'principal',
      reason:
        match.error ??
        `no match in ident map "${mapName}" for principal "${principal}" and user "${ctx.user}"`,
    };
  return {
    ok: true,
    authenticatedAs: `token principal "${principal}" (ident map "${mapName}", entry ${match.entry + 1} at line ${match.line})`,
  };
}
