/**
 * The upstream login phase, shared by both front ends: choose the login (the rule's `upstream_login`,
 * else the user's, else the default), connect, log in, take an external user's role (`SET ROLE`), and
 * count the failures that are pgward's or the server's (an upstream that refuses the user is the
 * client's business, not a failure).
 */

import type { Logger } from 'pino';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { connectUpstream } from '../upstream/connect.ts';
import { loginUpstream, UpstreamRejection, type UpstreamSession } from '../upstream/login.ts';
import { planUpstreamLogin } from '../upstream/login-plan.ts';
import { setRole } from '../upstream/set-role.ts';
import type { Authenticated } from './authenticate.ts';
import type { Runtime } from './runtime.ts';

/** Startup parameters that would choose a role (`options` may hold `-c role=…`). */
const ROLE_SETTINGS = /role|session_authorization/i;

/**
 * An external user's role is the one its token granted: a startup parameter choosing another (which
 * `RESET ROLE` would return to) is refused rather than passed on.
 */
function refuseChosenRole(parameters: ReadonlyMap<string, string>): void {
  for (const [name, value] of parameters) {
    if (ROLE_SETTINGS.test(name) || (name === 'options' && ROLE_SETTINGS.test(value)))
      throw new PgError(
        SqlState.InsufficientPrivilege,
        `startup parameter "${name}" cannot set the role of an external user`,
        { detail: 'The role comes from the token.' },
      );
  }
}

/** Logs in to the upstream for an authenticated client; resolves once the upstream is ready. */
export async function openUpstream(
  runtime: Runtime,
  authenticated: Authenticated,
  database: string,
  parameters: ReadonlyMap<string, string>,
  log: Logger,
): Promise<UpstreamSession> {
  const upstream = runtime.config.upstream;
  const { rule, identity } = authenticated;
  const plan = planUpstreamLogin(
    upstream,
    rule.options.upstreamLogin ?? runtime.users.find(identity.user)?.upstreamLogin,
    identity,
    rule.method,
  );
  log.debug({ upstreamUser: plan.user, login: plan.loginName, secret: plan.secret.kind }, 'upstream login');
  if (identity.role !== undefined) refuseChosenRole(parameters);
  try {
    const socket = await connectUpstream(upstream, plan.clientCertificate);
    const session = await loginUpstream(socket, upstream, {
      user: plan.user,
      database,
      parameters,
      secret: plan.secret,
      loginName: plan.loginName,
    });
    if (identity.role === undefined) return session;
    log.debug({ role: identity.role }, 'external user: SET ROLE upstream');
    return await setRole(session, identity.role);
  } catch (error) {
    if (!(error instanceof UpstreamRejection)) runtime.metrics.upstreamFailures++;
    throw error;
  }
}
