/**
 * `oauth`: SASL OAUTHBEARER (RFC 7628) as PostgreSQL 18 runs it. AuthenticationSASL offers only
 * OAUTHBEARER; the client's response carries `auth=Bearer <token>`, checked by the rule's validator
 * (token-check.ts), and success is AuthenticationOk directly (libpq refuses AuthenticationSASLFinal
 * here). An empty `auth` asks where tokens come from: the answer is the error challenge (the rule's
 * `issuer` as a discovery URL and its `scope`); the client acknowledges with one kvsep — or hangs up —
 * and the login ends with FATAL 28000, as a discovery, not a failure. A bad token gets the same
 * challenge, never details; after the kvsep the client is told the class of the problem.
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { encodeAuthenticationSASL, encodeAuthenticationSASLContinue } from '../wire/backend.ts';
import { parseSaslInitialResponse } from '../wire/frontend.ts';
import type { AuthFailure } from './failure.ts';
import { type AuthContext, type AuthMethod, type AuthStep, rejected } from './method.ts';
import {
  bearerToken,
  checkErrorAcknowledgement,
  errorChallenge,
  MAX_OAUTHBEARER_MESSAGE,
  OAUTHBEARER,
  parseClientResponse,
} from './oauthbearer.ts';
import { checkToken } from './token-check.ts';

/** Replies are bounded by PostgreSQL's OAUTHBEARER limit, which counts the length word (pq_getmessage). */
const MAX_REPLY_LENGTH = MAX_OAUTHBEARER_MESSAGE;

/** Sends the error challenge; the client's kvsep (or hang-up) ends the login with `failure`. */
function errorStep(ctx: AuthContext, failure: AuthFailure): AuthStep {
  return {
    kind: 'challenge',
    message: encodeAuthenticationSASLContinue(
      errorChallenge(ctx.rule.options.issuer ?? '', ctx.rule.options.scope ?? ''),
    ),
    maxReplyLength: MAX_REPLY_LENGTH,
    ifClientGone: failure,
    async next(reply) {
      checkErrorAcknowledgement(reply);
      return rejected(failure);
    },
  };
}

/** Reads the client's response and decides: discovery, a bad token, or accepted. */
async function respond(ctx: AuthContext, data: Buffer): Promise<AuthStep> {
  const auth = parseClientResponse(data);
  if (auth === '') return errorStep(ctx, { kind: 'oauth-discovery', reason: 'issuer discovery requested' });
  const bearer = bearerToken(auth);
  if ('problem' in bearer)
    return errorStep(ctx, { kind: 'token', tokenProblem: 'malformed', reason: bearer.problem });
  const step = await checkToken(ctx, bearer.token);
  return step.kind === 'rejected' ? errorStep(ctx, step.failure) : step;
}

export const oauthMethod: AuthMethod = {
  name: 'oauth',
  async begin(ctx) {
    return {
      kind: 'challenge',
      message: encodeAuthenticationSASL([OAUTHBEARER]),
      maxReplyLength: MAX_REPLY_LENGTH,
      async next(reply) {
        const initial = parseSaslInitialResponse(reply);
        if (initial.mechanism !== OAUTHBEARER)
          throw new PgError(
            SqlState.ProtocolViolation,
            'client selected an invalid SASL authentication mechanism',
            { logMessage: `client selected SASL mechanism "${initial.mechanism}", offered ${OAUTHBEARER}` },
          );
        if (initial.data !== null) return respond(ctx, initial.data);
        // No initial response: an empty challenge asks for it (RFC 4422), as PostgreSQL does.
        return {
          kind: 'challenge',
          message: encodeAuthenticationSASLContinue(Buffer.alloc(0)),
          maxReplyLength: MAX_REPLY_LENGTH,
          next: (data) => respond(ctx, data),
        };
      },
    };
  },
};
