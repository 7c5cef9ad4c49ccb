/**
 * Session: the one place that knows the phase order of a client connection —
 * negotiate (TLS/GSS/cancel) → startup → HBA match → authentication → upstream login → relay.
 * Every phase's work lives in its own module; this file only sequences them and turns failures into
 * the client's ErrorResponse plus a log line.
 */

import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { type IpAddress, normalizeClientAddress } from '../hba/address.ts';
import type { ConnectionFacts } from '../hba/rule.ts';
import { newConnectionId } from '../observe/logger.ts';
import { handshakeCertificate, type PeerCertificate } from '../tls/peer-certificate.ts';
import { sendUpstreamCancel } from '../upstream/cancel.ts';
import { UpstreamRejection, type UpstreamSession } from '../upstream/login.ts';
import {
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  NegotiationAnswer,
} from '../wire/backend.ts';
import {
  FrontendType,
  parseStartupPacket,
  readStartupIdentity,
  type StartupIdentity,
  type StartupMessage,
} from '../wire/frontend.ts';
import { CANCEL_KEY_LENGTH_3_2, PROTOCOL_LATEST_MINOR, TLS_HANDSHAKE_RECORD } from '../wire/limits.ts';
import type { PendingAuthTicket } from './auth-throttle.ts';
import { type Authenticated, authenticate, groupsOf } from './authenticate.ts';
import { ClientConnection, ClientGone } from './client-connection.ts';
import { atDeadline } from './deadline.ts';
import { openUpstream } from './open-upstream.ts';
import { Relay } from './relay.ts';
import type { Runtime } from './runtime.ts';

const ADMIN_SHUTDOWN = new PgError(
  SqlState.AdminShutdown,
  'terminating connection due to administrator command',
);
/** Encoded once: every relay keeps it, and a per-session copy would pin a pooled 8 KiB slab each. */
const UPSTREAM_LOST = encodeErrorResponse(
  new PgError(SqlState.ConnectionFailure, 'upstream server closed the connection unexpectedly'),
);
const AUTH_TIMEOUT = new PgError(SqlState.QueryCanceled, 'canceling authentication due to timeout');
const TOKEN_EXPIRED = new PgError(SqlState.InvalidAuthorizationSpecification, 'token expired');

function protocolViolation(message: string, detail?: string): PgError {
  return new PgError(SqlState.ProtocolViolation, message, detail === undefined ? {} : { detail });
}

/** One client connection from accept to close. */
export class Session {
  readonly id = newConnectionId();
  readonly #runtime: Runtime;
  readonly #conn: ClientConnection;
  readonly #log: Logger;
  readonly #transport: 'tcp' | 'local';
  /** The client's address, read once at accept (IPv4-mapped IPv6 as IPv4); null for Unix sockets. */
  readonly #address: IpAddress | null;
  #relay: Relay | null = null;
  #terminating: PgError | null = null;
  /** The channel binding data of the certificate this connection's handshake presented. */
  #channelBinding: Buffer | null = null;
  /** The certificate the client presented in the TLS handshake, if any. */
  #peerCertificate: PeerCertificate | null = null;

  /** Stops the end_session_at_token_expiry timer. */
  #cancelExpiry: (() => void) | null = null;

  /** This connection's place among those still authenticating; released once authentication ends. */
  #pendingTicket: PendingAuthTicket | null;

  /**
   * @param transport what kind of listener accepted the socket (never guessed from the socket).
   * @param ticket the place the listener took for it in the pending-authentication cap
   */
  constructor(socket: net.Socket, runtime: Runtime, transport: 'tcp' | 'local', ticket: PendingAuthTicket) {
    this.#runtime = runtime;
    this.#pendingTicket = ticket;
    this.#transport = transport;
    if (transport === 'tcp') socket.setNoDelay(true);
    this.#address = transport === 'tcp' ? normalizeClientAddress(socket.remoteAddress) : null;
    this.#log = runtime.log.child({ conn: this.id });
    this.#conn = new ClientConnection(socket, runtime.config.limits.maxMessageLength);
  }

  get #peer(): string {
    return this.#address?.toString() ?? '[local]';
  }

  /** Runs the connection to its end; never rejects. */
  async run(): Promise<void> {
    const running = await this.#establish();
    if (!running) return;
    // Only the relay is in scope while the session idles: the startup packet, the identity and the
    // login's messages were locals of #establish and are gone.
    await running.relay.done;
    this.#endSession(running);
  }

  /** Every phase before the relay; returns the running relay, or null once the connection ended. */
  async #establish(): Promise<{ relay: Relay; cancelKey: number } | null> {
    const timer = setTimeout(() => this.#abort(AUTH_TIMEOUT), this.#runtime.config.limits.authTimeoutMs);
    this.#log.debug({ peer: this.#peer, port: this.#conn.socket.remotePort }, 'connection accepted');
    try {
      // A TCP peer whose address cannot be read (it reset at once) must not pass for a local one.
      if (this.#transport === 'tcp' && this.#address === null)
        throw new ClientGone('client address unavailable');
      const startup = await this.#negotiate();
      if (!startup) return null;
      const identity = readStartupIdentity(startup);
      this.#answerProtocolVersion(startup);
      const authenticated = await this.#authenticate(identity);
      clearTimeout(timer);
      const running = this.#startRelay(
        await this.#loginUpstream(identity, authenticated, startup.parameters),
        startup,
      );
      // end_session_at_token_expiry: the token's expiry ends the session.
      const endsAt = authenticated.identity.sessionEndsAt;
      if (endsAt)
        this.#cancelExpiry = atDeadline(endsAt, () => {
          this.#log.info({ expiredAt: endsAt.toISOString() }, 'token expired: ending the session');
          this.#abort(TOKEN_EXPIRED);
        });
      return running;
    } catch (error) {
      this.#handleFailure(error);
      return null;
    } finally {
      clearTimeout(timer);
      this.#releasePending();
    }
  }

  #releasePending(): void {
    this.#pendingTicket?.release();
    this.#pendingTicket = null;
  }

  /** Ends the session with an ErrorResponse (shutdown, timeout), wherever it is. */
  terminate(error: PgError = ADMIN_SHUTDOWN): void {
    this.#abort(error);
  }

  #abort(error: PgError): void {
    if (this.#terminating) return;
    this.#terminating = error;
    if (this.#relay) this.#relay.terminate(encodeErrorResponse(error));
    else this.#conn.fail(error);
  }

  /** Handles SSLRequest, GSSENCRequest, direct TLS and CancelRequest; returns the StartupMessage. */
  async #negotiate(): Promise<StartupMessage | null> {
    const tls = this.#runtime.tls;
    let tlsDone = false;
    let gssDone = false;
    if ((await this.#conn.peekFirstByte()) === TLS_HANDSHAKE_RECORD) {
      if (!tls?.direct || this.#transport === 'local')
        throw protocolViolation('direct TLS connections are not accepted here');
      this.#channelBinding = tls.channelBinding;
      await this.#conn.startTls(tls.current, {
        requireAlpn: true,
        requestCert: tls.requestClientCertificate,
      });
      this.#readPeerCertificate();
      tlsDone = gssDone = true;
    }
    for (;;) {
      const packet = parseStartupPacket(await this.#conn.nextStartupPacket());
      switch (packet.kind) {
        case 'SSLRequest': {
          if (tlsDone) throw protocolViolation('SSLRequest received after TLS negotiation ended');
          tlsDone = true;
          // No TLS over Unix sockets, as in PostgreSQL: the bytes never leave the machine.
          if (!tls || this.#conn.tls || this.#transport === 'local') {
            this.#conn.write(NegotiationAnswer.Refuse);
            continue;
          }
          this.#conn.write(NegotiationAnswer.AcceptTls);
          if (this.#conn.bufferedLength > 0) {
            throw protocolViolation(
              'received unencrypted data after SSL request',
              'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
            );
          }
          this.#channelBinding = tls.channelBinding;
          await this.#conn.startTls(tls.current, {
            requireAlpn: false,
            requestCert: tls.requestClientCertificate,
          });
          this.#readPeerCertificate();
          gssDone = true;
          continue;
        }
        case 'GSSENCRequest':
          if (gssDone) throw protocolViolation('GSSENCRequest received after encryption negotiation ended');
          gssDone = true;
          this.#conn.write(NegotiationAnswer.Refuse);
          continue;
        case 'CancelRequest':
          this.#forwardCancel(packet.processId, packet.secretKey);
          this.#conn.close();
          return null;
        case 'StartupMessage':
          return packet;
      }
    }
  }

  /** Reads the client's certificate once the handshake is done; a refused one ends the connection. */
  #readPeerCertificate(): void {
    const socket = this.#conn.socket;
    const certificate = socket instanceof TLSSocket ? handshakeCertificate(socket, this.#log) : null;
    if (certificate === 'refused')
      throw new ClientGone("SSL certificate's common name contains embedded null");
    this.#peerCertificate = certificate;
  }

  #forwardCancel(processId: number, secretKey: Buffer): void {
    this.#runtime.metrics.cancelRequests++;
    const target = this.#runtime.cancelMap.find(processId, secretKey);
    this.#log.info({ processId, matched: target !== undefined }, 'cancel request');
    target?.cancel();
  }

  #answerProtocolVersion(startup: StartupMessage): void {
    if (startup.requested.minor > PROTOCOL_LATEST_MINOR || startup.protocolOptions.length > 0) {
      const minor = Math.min(startup.requested.minor, PROTOCOL_LATEST_MINOR);
      this.#conn.write(encodeNegotiateProtocolVersion(minor, startup.protocolOptions));
    }
  }

  #facts(identity: StartupIdentity): ConnectionFacts {
    return {
      transport: this.#transport,
      address: this.#address,
      tls: this.#conn.tls,
      protocol: 'pg',
      database: identity.database,
      user: identity.user,
      replication: identity.replication,
      groups: groupsOf(this.#runtime, identity.user),
      serverInterfaces: this.#runtime.serverInterfaces,
    };
  }

  /** The authentication phase over this socket; ends with AuthenticationOk sent. */
  async #authenticate(identity: StartupIdentity): Promise<Authenticated> {
    const authenticated = await authenticate(
      this.#runtime,
      this.#facts(identity),
      {
        peerCertificate: this.#peerCertificate,
        channelBinding: this.#channelBinding,
      },
      async (challenge) => {
        this.#conn.write(challenge.message);
        const reply = await this.#conn.nextMessage(
          [FrontendType.Password, FrontendType.Terminate],
          challenge.maxReplyLength,
        );
        if (reply.type === FrontendType.Terminate)
          throw new ClientGone('client sent Terminate during authentication');
        return reply.body;
      },
      this.#log,
    );
    if (authenticated.finalMessage) this.#conn.write(authenticated.finalMessage);
    this.#conn.write(encodeAuthenticationOk());
    return authenticated;
  }

  async #loginUpstream(
    identity: StartupIdentity,
    authenticated: Authenticated,
    parameters: ReadonlyMap<string, string>,
  ): Promise<UpstreamSession> {
    const session = await openUpstream(
      this.#runtime,
      authenticated,
      identity.database,
      parameters,
      this.#log,
    );
    if (this.#terminating) {
      session.socket.destroy();
      throw this.#terminating;
    }
    return session;
  }

  /** Issues the client's cancel key, sends the end of the login, and starts relaying. */
  #startRelay(upstream: UpstreamSession, startup: StartupMessage): { relay: Relay; cancelKey: number } {
    const config = this.#runtime.config.upstream;
    const keyLength = startup.requested.minor >= 2 ? CANCEL_KEY_LENGTH_3_2 : 4;
    const { processId: upstreamPid, secretKey: upstreamKey } = upstream;
    const key = this.#runtime.cancelMap.issue(
      {
        cancel: () => {
          sendUpstreamCancel(config, upstreamPid, upstreamKey).catch((error: unknown) =>
            this.#log.warn({ err: (error as Error).message }, 'cancel forwarding failed'),
          );
        },
      },
      keyLength,
    );
    const { socket, pending } = this.#conn.release();
    socket.write(
      Buffer.concat([
        ...upstream.forward,
        encodeBackendKeyData(key.processId, key.secretKey),
        upstream.readyForQuery,
      ]),
    );
    const relay = new Relay(socket, upstream.socket, this.#log, UPSTREAM_LOST);
    this.#relay = relay;
    this.#runtime.metrics.sessionsActive++;
    this.#log.info({ upstreamPid }, 'session started');
    relay.start(pending, upstream.leftover);
    return { relay, cancelKey: key.processId };
  }

  #endSession({ relay, cancelKey }: { relay: Relay; cancelKey: number }): void {
    this.#cancelExpiry?.();
    this.#runtime.cancelMap.revoke(cancelKey);
    this.#runtime.metrics.sessionsActive--;
    this.#log.info({ toUpstream: relay.bytesToUpstream, toClient: relay.bytesToClient }, 'session ended');
  }

  #handleFailure(error: unknown): void {
    if (error instanceof ClientGone) {
      this.#log.debug({ reason: error.message }, 'client gone before session start');
      if (!this.#terminating) this.#conn.close();
      return;
    }
    if (error instanceof PgError) {
      if (error.sqlstate === SqlState.ProtocolViolation) this.#runtime.metrics.protocolViolations++;
      this.#log.info({ sqlstate: error.sqlstate, error: error.logMessage }, 'connection refused');
      if (error !== this.#terminating)
        this.#conn.fail(error instanceof UpstreamRejection ? error.raw : error);
      return;
    }
    this.#log.error({ err: error }, 'internal error');
    this.#conn.fail(new PgError(SqlState.InternalError, 'internal error in pgward'));
  }
}
