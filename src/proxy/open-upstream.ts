/**
 * The upstream login phase, shared by both front ends: choose the login (the rule's `upstream_login`,
 * else the user's, else the default), connect, log in, and count the failures that are pgward's or the
 * server's (an upstream that refuses the user is the client's business, not a failure).
 */

import type { Logger } from 'pino';
import { connectUpstream } from '../upstream/connect.ts';
import { loginUpstream, UpstreamRejection, type UpstreamSession } from '../upstream/login.ts';
import { planUpstreamLogin } from '../upstream/login-plan.ts';
import type { Authenticated } from './authenticate.ts';
import type { Runtime } from './runtime.ts';

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
  try {
    const socket = await connectUpstream(upstream, plan.clientCertificate);
    return await loginUpstream(socket, upstream, {
      user: plan.user,
      database,
      parameters,
      secret: plan.secret,
      loginName: plan.loginName,
    });
  } catch (error) {
    if (!(error instanceof UpstreamRejection)) runtime.metrics.upstreamFailures++;
    throw error;
  }
}
