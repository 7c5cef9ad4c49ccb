/**
 * The authentication phase, shared by both front ends (the pg session and the HTTP `/sql` endpoint):
 * HBA match → the rule's `clientcert` requirement → the method's exchange → `clientcert: verify-full`'s
 * name check → the brute-force delay → one logged decision. How challenges reach the client is the front
 * end's business (a socket for pg, the request's Basic credentials for HTTP): it passes a
 * ChallengeTransport. Failures are thrown as PgError in PostgreSQL's wording.
 */

import type { Logger } from 'pino';
import { checkCertificateName, validCertificate } from '../auth/client-certificate.ts';
import { failureToPgError } from '../auth/failure.ts';
import type { AuthContext, AuthIdentity, AuthStep } from '../auth/method.ts';
import { authMethodFor } from '../auth/registry.ts';
import { PgError } from '../errors/pg-error.ts';
import { matchHbaRule, noHbaEntryError } from '../hba/match.ts';
import type { ConnectionFacts, HbaRule } from '../hba/rule.ts';
import type { PeerCertificate } from '../tls/peer-certificate.ts';
import { sleep } from './auth-throttle.ts';
import { ClientGone } from './client-connection.ts';
import type { Runtime } from './runtime.ts';

const NO_GROUPS: ReadonlySet<string> = new Set();

/** A method's request for a reply. */
export type Challenge = Extract<AuthStep, { kind: 'challenge' }>;
/** How a method ends: accepted or rejected. */
type FinalStep = Exclude<AuthStep, { kind: 'challenge' }>;

/** How a method ended, and whether the client had hung up by then. */
interface Ended {
  step: FinalStep;
  /** Set when the client left instead of answering a challenge that allows it. */
  clientGone?: ClientGone;
}

/**
 * Delivers a challenge to the client and resolves with the body of its reply (a 'p' message). The
 * rule is there for front ends that answer for their client (HTTP: which credentials fit it).
 */
export type ChallengeTransport = (challenge: Challenge, rule: HbaRule) => Promise<Buffer>;

/** What the front end knows about the client besides the HBA facts. */
export interface ClientFacts {
  /** The client's certificate, when it presented one. */
  peerCertificate: PeerCertificate | null;
  /** The tls-server-end-point data of this connection's TLS handshake, or null. */
  channelBinding: Buffer | null;
}

/** The outcome of a successful authentication. */
export interface Authenticated {
  identity: AuthIdentity;
  rule: HbaRule;
  /** A message the client must get before AuthenticationOk (SCRAM's AuthenticationSASLFinal). */
  finalMessage?: Buffer;
}

/** The groups a user has in the users file, for HBA facts and ident maps. */
export function groupsOf(runtime: Runtime, user: string): ReadonlySet<string> {
  return runtime.users.find(user)?.groups ?? NO_GROUPS;
}

/** Runs the whole authentication phase; resolves when the client is accepted, else throws PgError. */
export async function authenticate(
  runtime: Runtime,
  facts: ConnectionFacts,
  client: ClientFacts,
  transport: ChallengeTransport,
  log: Logger,
): Promise<Authenticated> {
  const rule = matchHbaRule(runtime.hba.rules, facts);
  const decision = {
    user: facts.user,
    database: facts.database,
    peer: facts.address?.toString(),
    tls: facts.tls,
    protocol: facts.protocol,
  };
  if (!rule) {
    log.info({ ...decision, rule: null, result: 'no-match' }, 'auth decision');
    throw noHbaEntryError(facts);
  }
  const ruleRef = { rule: rule.name, line: rule.source.line, method: rule.method };
  const logDecision = (outcome: Record<string, unknown>) =>
    log.info({ ...decision, ...ruleRef, ...outcome }, 'auth decision');
  const ctx: AuthContext = {
    user: facts.user,
    database: facts.database,
    host: facts.address?.toString() ?? '[local]',
    tls: facts.tls,
    rule,
    credentials: runtime.credentials,
    channelBinding: facts.tls ? client.channelBinding : null,
    mockSecret: runtime.mockAuthSecret,
    peerCertificate: client.peerCertificate,
    maps: runtime.hba.maps,
    groupsOf: (user) => groupsOf(runtime, user),
    tokenValidators: runtime.tokenValidators,
    tokenBindingOf: (user) => runtime.users.find(user)?.jwt,
    validatorConfig: (name) => runtime.config.tokenValidators.find((config) => config.name === name),
    isLocalUser: (user) => runtime.users.find(user) !== undefined,
    log,
  };
  let ended: Ended;
  try {
    ended = await runMethod(ctx, transport);
    await countAttempt(runtime, ctx, ended.step, log);
  } catch (error) {
    // A broken exchange (malformed SCRAM, a downgrade) is a decision too.
    if (error instanceof PgError) {
      runtime.metrics.countAuth(rule.method, 'failed');
      logDecision({ result: 'error', sqlstate: error.sqlstate, reason: error.logMessage });
    }
    throw error;
  }
  const step = ended.step;
  if (step.kind === 'rejected') {
    const discovery = step.failure.kind === 'oauth-discovery';
    runtime.metrics.countAuth(rule.method, discovery ? 'discovery' : 'failed');
    logDecision({
      result: discovery ? 'discovery' : 'rejected',
      reason: step.failure.reason,
      ...(ended.clientGone && { clientGone: true }),
    });
    throw ended.clientGone ?? failureToPgError(step.failure, ctx);
  }
  runtime.metrics.countAuth(rule.method, 'ok');
  logDecision({ result: 'accepted', identity: step.identity.authenticatedAs });
  return {
    identity: step.identity,
    rule,
    ...(step.finalMessage ? { finalMessage: step.finalMessage } : {}),
  };
}

/**
 * Counts the attempt against the (address, user) pair; after too many failures, waits before the
 * failure is answered, so guessing passwords gets slower and slower.
 */
async function countAttempt(runtime: Runtime, ctx: AuthContext, step: FinalStep, log: Logger): Promise<void> {
  // A rejecting rule is no guess, and an OAuth discovery request is part of a normal login.
  if (
    step.kind === 'rejected' &&
    (step.failure.kind === 'hba-reject' || step.failure.kind === 'oauth-discovery')
  )
    return;
  const wait = runtime.failureDelays.settle(ctx.host, ctx.user, step.kind === 'accepted');
  if (wait === 0) return;
  runtime.metrics.authFailuresDelayed++;
  log.info({ user: ctx.user, delayMs: wait }, 'repeated authentication failures: delaying the answer');
  await sleep(wait);
}

/**
 * PostgreSQL's order for a rule: its `clientcert` requirement (a valid certificate), the method's
 * exchange, then `clientcert: verify-full`'s name check. The `cert` method does both checks itself.
 */
async function runMethod(ctx: AuthContext, transport: ChallengeTransport): Promise<Ended> {
  const clientcert = ctx.rule.options.clientcert;
  const byCertificate = ctx.rule.method === 'cert';
  if (clientcert !== undefined && !byCertificate) {
    const valid = validCertificate(ctx.peerCertificate);
    if (!valid.ok) return { step: { kind: 'rejected', failure: valid.failure } };
  }
  let step = await authMethodFor(ctx.rule.method).begin(ctx);
  while (step.kind === 'challenge') {
    let reply: Buffer;
    try {
      reply = await transport(step, ctx.rule);
    } catch (error) {
      // A hang-up the method expects ends the exchange as it says (and is logged as such).
      if (!(error instanceof ClientGone) || error.byPgward || !step.ifClientGone) throw error;
      return { step: { kind: 'rejected', failure: step.ifClientGone }, clientGone: error };
    }
    step = await step.next(reply);
  }
  const certificate = ctx.peerCertificate;
  if (step.kind === 'accepted' && clientcert === 'verify-full' && !byCertificate && certificate) {
    const name = checkCertificateName(certificate, ctx);
    if (!name.ok) return { step: { kind: 'rejected', failure: name.failure } };
    const authenticatedAs = `${step.identity.authenticatedAs}, certificate ${name.authenticatedAs}`;
    return { step: { ...step, identity: { ...step.identity, authenticatedAs } } };
  }
  return { step };
}
