/**
 * Which upstream login a session uses and what it proves there (DESIGN.md "Upstream login"): the
 * rule's `upstream_login`, else the user's (users.yaml), else pgward.yaml's `upstream.login`; then the
 * login's mode decides the upstream user and secret from what the client proved.
 */

import type { AuthIdentity } from '../auth/method.ts';
import type { LoginMode, UpstreamConfig, UpstreamLoginConfig } from '../config/upstream-config.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import type { UpstreamSecret } from './login.ts';

/** Who to log in as upstream, with what. */
export interface UpstreamLoginPlan {
  user: string;
  secret: UpstreamSecret;
  /** `upstream login "name"` or `the default upstream login`, for messages. */
  loginName: string;
  /** The login's mode. */
  mode: LoginMode;
  /** pgward's own certificate for the upstream TLS handshake, when the login has one. */
  clientCertificate: { certFile: string; keyFile: string } | undefined;
}

function cannotPass(loginName: string, what: string, method: string): PgError {
  return new PgError(
    SqlState.InvalidAuthorizationSpecification,
    `pgward cannot log in to the upstream server for this connection`,
    {
      detail: `${loginName} passes the client's ${what} through, and method "${method}" does not provide one.`,
      logMessage: `${loginName} needs the client's ${what}, which method "${method}" does not provide`,
    },
  );
}

/**
 * The plan for one session.
 * @param chosen the login named by the rule, else by the user (undefined: the default)
 * @param method the HBA method that authenticated the client (for errors)
 */
export function planUpstreamLogin(
  upstream: UpstreamConfig,
  chosen: string | undefined,
  identity: AuthIdentity,
  method: string,
): UpstreamLoginPlan {
  const login: UpstreamLoginConfig | undefined =
    chosen === undefined ? upstream.login : upstream.logins.get(chosen);
  const loginName = chosen === undefined ? 'the default upstream login' : `upstream login "${chosen}"`;
  // Names are checked when rules and users load; a login removed by a later reload of pgward.yaml
  // while the users file still names it is refused rather than silently replaced by the default.
  if (!login) {
    throw new PgError(
      SqlState.InvalidAuthorizationSpecification,
      'pgward cannot log in to the upstream server for this connection',
      {
        logMessage: `${loginName} is not configured`,
      },
    );
  }
  const plan = (user: string, secret: UpstreamSecret): UpstreamLoginPlan => ({
    user,
    secret,
    loginName,
    mode: login.mode,
    clientCertificate: login.clientCertificate,
  });
  const configured: UpstreamSecret =
    login.password === undefined ? { kind: 'none' } : { kind: 'password', password: login.password };
  switch (login.mode) {
    case 'same':
      return plan(identity.user, configured);
    case 'service':
      return plan(login.user ?? identity.user, configured);
    case 'passthrough':
      if (identity.cleartextPassword === undefined) throw cannotPass(loginName, 'cleartext password', method);
      return plan(identity.user, { kind: 'password', password: identity.cleartextPassword });
    case 'scram-passthrough':
      if (identity.scramKeys) return plan(identity.user, { kind: 'scram-keys', keys: identity.scramKeys });
      // A client that sent its password in clear proved more than its SCRAM keys.
      if (identity.cleartextPassword !== undefined)
        return plan(identity.user, { kind: 'password', password: identity.cleartextPassword });
      throw cannotPass(loginName, 'SCRAM keys', method);
  }
}
