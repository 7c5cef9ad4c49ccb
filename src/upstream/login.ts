/**
 * Logs in to the upstream over an open socket: StartupMessage (protocol 3.0) with the client's
 * parameters, the server's authentication request (cleartext, md5 or SCRAM-SHA-256), then collects
 * ParameterStatus, BackendKeyData and ReadyForQuery. Frames with FrameReader, decodes with
 * pg-protocol's Parser, and keeps the raw bytes of what is relayed to the client unchanged.
 */

import { serialize } from 'pg-protocol';
import type { BackendMessage, DatabaseError } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { md5SaltedResponse } from '../auth/md5.ts';
import type { ScramClientKeys } from '../auth/method.ts';
import { md5PasswordHash } from '../auth/password.ts';
import type { UpstreamConfig } from '../config/pgward-config.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { FrameReader, frameBytes, type TypedMessage } from '../wire/frame-reader.ts';
import { type UpstreamSocket, upstreamFailure } from './connect.ts';
import { SCRAM_SHA_256, ScramClient } from './scram-client.ts';

/** Largest message accepted from the upstream during login. */
const MAX_LOGIN_MESSAGE_LENGTH = 1024 * 1024;

/** What the upstream said before it became ready, and the socket to relay. */
export interface UpstreamSession {
  socket: UpstreamSocket;
  processId: number;
  secretKey: Buffer;
  /** Raw ParameterStatus and NoticeResponse messages, in arrival order, to forward to the client. */
  forward: Buffer[];
  /** The raw ReadyForQuery message. */
  readyForQuery: Buffer;
  /** Bytes received after ReadyForQuery (normally none). */
  leftover: Buffer;
}

/** The upstream refused the login: its ErrorResponse is forwarded to the client unchanged. */
export class UpstreamRejection extends PgError {
  readonly raw: Buffer;
  constructor(error: DatabaseError, raw: Buffer) {
    super(error.code ?? SqlState.InternalError, error.message, { detail: error.detail, hint: error.hint });
    this.raw = raw;
  }
}

/** What pgward proves to the upstream. */
export type UpstreamSecret =
  | { kind: 'none' }
  | { kind: 'password'; password: string }
  /** The SCRAM keys a client proved (scram-passthrough): answers SCRAM only. */
  | { kind: 'scram-keys'; keys: ScramClientKeys };

/** Who to log in as and what to send. */
export interface LoginRequest {
  user: string;
  database: string;
  /** Startup parameters forwarded from the client (user and database excluded). */
  parameters: ReadonlyMap<string, string>;
  secret: UpstreamSecret;
  /** Names the login in errors (`upstream login "name"`). */
  loginName: string;
}

function decode(parser: Parser, raw: Buffer): BackendMessage {
  let decoded: BackendMessage | undefined;
  parser.parse(raw, (message) => {
    decoded = message;
  });
  if (!decoded) throw new Error('undecodable upstream message');
  return decoded;
}

/** Runs the login exchange; resolves once the upstream sent ReadyForQuery. */
export function loginUpstream(
  socket: UpstreamSocket,
  config: UpstreamConfig,
  request: LoginRequest,
): Promise<UpstreamSession> {
  const reader = new FrameReader(MAX_LOGIN_MESSAGE_LENGTH);
  // Frames arrive whole, so one parser serves the whole login.
  const parser = new Parser();
  const forward: Buffer[] = [];
  let processId = 0;
  let secretKey = Buffer.alloc(0);
  let scram: ScramClient | null = null;

  const needPassword = (asked: string): string => {
    const secret = request.secret;
    if (secret.kind === 'password') return secret.password;
    throw upstreamFailure(
      config,
      secret.kind === 'none'
        ? `upstream asked for a password for user "${request.user}" and ${request.loginName} has none`
        : `upstream asked for ${asked} for user "${request.user}"; ${request.loginName} can only answer SCRAM-SHA-256`,
    );
  };

  const handle = async (frame: TypedMessage): Promise<UpstreamSession | null> => {
    const raw = frameBytes(frame);
    const message = decode(parser, raw);
    switch (message.name) {
      case 'authenticationOk':
        return null;
      case 'authenticationCleartextPassword':
        socket.write(serialize.password(needPassword('a cleartext password')));
        return null;
      case 'authenticationMD5Password': {
        const salt = (message as unknown as { salt: Buffer }).salt;
        const stored = md5PasswordHash(needPassword('an md5 password'), request.user);
        socket.write(serialize.password(md5SaltedResponse(stored, salt)));
        return null;
      }
      case 'authenticationSASL': {
        const mechanisms = (message as unknown as { mechanisms: string[] }).mechanisms;
        if (!mechanisms.includes(SCRAM_SHA_256)) {
          throw upstreamFailure(
            config,
            `upstream offers no supported SASL mechanism (${mechanisms.join(', ')})`,
          );
        }
        const secret = request.secret;
        scram = new ScramClient(secret.kind === 'scram-keys' ? secret.keys : needPassword('SCRAM'));
        socket.write(serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, scram.firstMessage()));
        return null;
      }
      case 'authenticationSASLContinue': {
        const data = (message as unknown as { data: string }).data;
        if (!scram) throw upstreamFailure(config, 'unexpected SASL continue from upstream');
        socket.write(serialize.sendSCRAMClientFinalMessage(await scram.finalMessage(data)));
        return null;
      }
      case 'authenticationSASLFinal': {
        const data = (message as unknown as { data: string }).data;
        if (!scram) throw upstreamFailure(config, 'unexpected SASL final from upstream');
        scram.verifyServerFinal(data);
        return null;
      }
      case 'error':
        throw new UpstreamRejection(message as DatabaseError, raw);
      case 'parameterStatus':
      case 'notice':
        forward.push(raw);
        return null;
      case 'backendKeyData':
        processId = frame.body.readUInt32BE(0);
        // Buffer.alloc is never pooled: the key lives as long as the session, and a pooled slice would
        // keep a whole 8 KiB pool slab alive with it.
        secretKey = Buffer.alloc(frame.body.length - 4);
        frame.body.copy(secretKey, 0, 4);
        return null;
      case 'readyForQuery':
        return {
          socket,
          processId,
          secretKey,
          forward,
          readyForQuery: raw,
          leftover: reader.takeRemaining(),
        };
      default:
        throw upstreamFailure(config, `unexpected message "${message.name}" from upstream during login`);
    }
  };

  return new Promise((resolve, reject) => {
    let busy = Promise.resolve();
    // A server that accepts and then says nothing must not hold the client (and its place among
    // those authenticating) for ever: the login gets the connect timeout too.
    const timer = setTimeout(
      () => finish(upstreamFailure(config, `no answer to the login within ${config.connectTimeoutMs} ms`)),
      config.connectTimeoutMs,
    );
    const finish = (error: unknown, session?: UpstreamSession) => {
      clearTimeout(timer);
      socket.off('data', onData).off('error', onError).off('close', onClose);
      socket.pause();
      if (session) resolve(session);
      else {
        socket.destroy();
        reject(error instanceof PgError ? error : upstreamFailure(config, (error as Error).message, error));
      }
    };
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      // Frames are handled one at a time: SCRAM steps are asynchronous.
      busy = busy
        .then(async () => {
          for (let frame = reader.readMessage(); frame; frame = reader.readMessage()) {
            const session = await handle(frame);
            if (session) return finish(null, session);
          }
        })
        .catch((error: unknown) => finish(error));
    };
    const onError = (error: Error) => finish(error);
    const onClose = () => finish(upstreamFailure(config, 'server closed the connection during login'));
    socket.on('data', onData).once('error', onError).once('close', onClose);
    socket.resume();
    const parameters: Record<string, string> = { user: request.user, database: request.database };
    for (const [name, value] of request.parameters) {
      if (name !== 'user' && name !== 'database') parameters[name] = value;
    }
    // A NUL inside a name or value would end it early and let the rest set parameters of its own.
    for (const [name, value] of Object.entries(parameters)) {
      if (`${name}${value}`.includes('\0'))
        return finish(
          new PgError(
            SqlState.InvalidParameterValue,
            `startup parameter "${name.replaceAll('\0', '\\0')}" contains a NUL character`,
          ),
        );
    }
    socket.write(serialize.startup(parameters));
  });
}
