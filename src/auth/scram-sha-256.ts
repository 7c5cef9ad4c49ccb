/**
 * `scram-sha-256`: the SASL exchange PostgreSQL runs (AuthenticationSASL → SASLInitialResponse →
 * AuthenticationSASLContinue → SASLResponse → AuthenticationSASLFinal), offering
 * SCRAM-SHA-256-PLUS first when the connection has channel binding data. Users without a SCRAM
 * verifier — unknown ones included — get a full mock exchange that fails at the proof, so nothing
 * the client sees or times tells them apart from a wrong password.
 */

import type { StoredCredentials } from '../credentials/credentials.ts';
import {
  encodeAuthenticationSASL,
  encodeAuthenticationSASLContinue,
  encodeAuthenticationSASLFinal,
} from '../wire/backend.ts';
import { parseSaslInitialResponse } from '../wire/frontend.ts';
import { type AuthContext, type AuthMethod, type AuthStep, rejected } from './method.ts';
import {
  decodeScramMessage,
  MAX_SCRAM_FRAME_LENGTH,
  mockScramVerifier,
  ScramServerExchange,
} from './scram/exchange.ts';

/** Runs a SCRAM exchange for the user's stored credentials (`undefined`: unknown user). */
export function scramExchange(ctx: AuthContext, stored: StoredCredentials | undefined): AuthStep {
  const verifier = stored?.scram;
  const exchange = new ScramServerExchange({
    verifier: verifier ?? mockScramVerifier(ctx.user, ctx.mockSecret),
    doomed: verifier === undefined,
    tls: ctx.tls,
    channelBinding: ctx.channelBinding,
  });
  const doomedReason = stored
    ? `user "${ctx.user}" has no SCRAM verifier (mock exchange)`
    : `user "${ctx.user}" has no stored credentials (mock exchange)`;

  const final = (data: Buffer): AuthStep => {
    const outcome = exchange.clientFinal(decodeScramMessage(data));
    if (!outcome.ok) return rejected({ kind: 'password', reason: verifier ? outcome.reason : doomedReason });
    return {
      kind: 'accepted',
      identity: {
        user: ctx.user,
        authenticatedAs: ctx.user,
        ...(verifier && {
          scramKeys: {
            clientKey: outcome.clientKey,
            serverKey: verifier.serverKey,
            salt: verifier.salt,
            iterations: verifier.iterations,
          },
        }),
      },
      finalMessage: encodeAuthenticationSASLFinal(Buffer.from(outcome.serverFinal)),
    };
  };
  const first = (data: Buffer): AuthStep => ({
    kind: 'challenge',
    message: encodeAuthenticationSASLContinue(Buffer.from(exchange.clientFirst(decodeScramMessage(data)))),
    maxReplyLength: MAX_SCRAM_FRAME_LENGTH,
    next: async (reply) => final(reply),
  });
  return {
    kind: 'challenge',
    message: encodeAuthenticationSASL(exchange.mechanisms),
    maxReplyLength: MAX_SCRAM_FRAME_LENGTH,
    async next(reply) {
      const initial = parseSaslInitialResponse(reply);
      exchange.selectMechanism(initial.mechanism);
      ctx.log.debug({ mechanism: initial.mechanism }, 'SASL mechanism selected');
      if (initial.data !== null) return first(initial.data);
      // No initial response: an empty challenge asks for the client-first-message (RFC 4422).
      return {
        kind: 'challenge',
        message: encodeAuthenticationSASLContinue(Buffer.alloc(0)),
        maxReplyLength: MAX_SCRAM_FRAME_LENGTH,
        next: async (data) => first(data),
      };
    },
  };
}

export const scramSha256Method: AuthMethod = {
  name: 'scram-sha-256',
  async begin(ctx) {
    return scramExchange(ctx, await ctx.credentials.lookup(ctx.user));
  },
};
