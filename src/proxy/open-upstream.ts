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
import { planUpstreamLogin, type UpstreamLoginPlan } from '../upstream/login-plan.ts';
import { RoleRefused, setRole } from '../upstream/set-role.ts';
import type { Authenticated } from './authenticate.ts';
import type { Runtime } from './runtime.ts';

/**
 * Startup parameters an external user may not send: each can choose a role (PostgreSQL unescapes
 * `options`, so its text cannot be screened), and `RESET ROLE` would return to a role chosen there.
 * GUC names are case-insensitive.
 */
const ROLE_PARAMETERS: ReadonlySet<string> = new Set(['options', 'role', 'session_authorization']);

/**
 * What an external user's session needs besides its role: a `service` login (its own name is no
 * role upstream, and logging in as whatever its principal says would be logging in as that role),
 * and no startup parameter that could choose another role.
 */
function checkExternalUser(plan: UpstreamLoginPlan, parameters: ReadonlyMap<string, string>): void {
  if (plan.mode !== 'service')
    throw new PgError(
      SqlState.InvalidAuthorizationSpecification,
      'pgward cannot log in to the upstream server for this connection',
      {
        detail: `External users log in upstream through a "service" login; ${plan.loginName} is "${plan.mode}".`,
        logMessage: `external user refused: ${plan.loginName} has mode "${plan.mode}", not "service"`,
      },
    );
  for (const name of parameters.keys()) {
    if (ROLE_PARAMETERS.has(name.toLowerCase()))
      throw new PgError(
        SqlState.InsufficientPrivilege,
        `startup parameter "${name}" is not accepted from an external user`,
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
  if (identity.role !== undefined) checkExternalUser(plan, parameters);
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
    return await setRole(session, identity.role, upstream.connectTimeoutMs);
  } catch (error) {
    // The upstream refusing the user or the role is configuration, not the upstream failing.
    if (!(error instanceof UpstreamRejection) && !(error instanceof RoleRefused))
      runtime.metrics.upstreamFailures++;
    throw error;
  }
}
