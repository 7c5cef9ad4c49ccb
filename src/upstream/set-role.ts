/**
 * `SET ROLE` on a freshly logged-in upstream connection, before the client gets it: an external user
 * (tokens/external-users.ts) runs as the role its token granted, not as the service account pgward
 * logged in with. The ParameterStatus messages the change causes (is_superuser) join those forwarded
 * to the client; an upstream refusal (the login is no member of the role) ends the login with the
 * upstream's SQLSTATE and message, as FATAL.
 */

import { serialize } from 'pg-protocol';
import type { DatabaseError } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { FrameReader, frameBytes, type TypedMessage } from '../wire/frame-reader.ts';
import type { UpstreamSession } from './login.ts';
import { connectionClosed, connectionFailed, unreadableAnswer } from './socket-errors.ts';

/** Largest message accepted while the statement runs. */
const MAX_MESSAGE_LENGTH = 1024 * 1024;

/** A role name as a quoted identifier. */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Decodes an ErrorResponse with pg-protocol's parser. */
function decodeError(raw: Buffer): DatabaseError {
  let decoded: DatabaseError | undefined;
  new Parser().parse(raw, (message) => {
    decoded = message as DatabaseError;
  });
  if (!decoded) throw new Error('undecodable ErrorResponse');
  return decoded;
}

/** The upstream refused the role (the login is no member of it, or it does not exist). */
export class RoleRefused extends PgError {}

/**
 * Runs `SET ROLE role`; resolves with the session updated (forwarded messages, ReadyForQuery). An
 * upstream that does not answer within `timeoutMs` is given up on.
 */
export function setRole(session: UpstreamSession, role: string, timeoutMs: number): Promise<UpstreamSession> {
  const { socket } = session;
  const reader = new FrameReader(MAX_MESSAGE_LENGTH);
  const forward = [...session.forward];
  let refusal: PgError | null = null;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        finish(
          new PgError(SqlState.ConnectionFailure, `upstream did not answer SET ROLE within ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    const finish = (error: PgError | null, done?: UpstreamSession) => {
      clearTimeout(timer);
      socket.off('data', onData).off('error', onError).off('close', onClose);
      socket.pause();
      if (done && !error) resolve(done);
      else {
        socket.destroy();
        reject(error);
      }
    };
    const handle = (frame: TypedMessage): UpstreamSession | null => {
      switch (String.fromCharCode(frame.type)) {
        case 'S':
        case 'N':
          forward.push(frameBytes(frame));
          return null;
        case 'E': {
          const { code, message } = decodeError(frameBytes(frame));
          refusal ??= new RoleRefused(code ?? SqlState.InternalError, message, {
            detail: `pgward could not take role "${role}" upstream for this external user.`,
            logMessage: `SET ROLE ${quoteIdentifier(role)} failed upstream: ${message}`,
          });
          return null;
        }
        case 'Z':
          return { ...session, forward, readyForQuery: frameBytes(frame), leftover: reader.takeRemaining() };
        default:
          return null;
      }
    };
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
        for (let frame = reader.readMessage(); frame; frame = reader.readMessage()) {
          const done = handle(frame);
          if (done) return finish(refusal, done);
        }
      } catch (error) {
        finish(unreadableAnswer(error));
      }
    };
    const onError = (error: Error) => finish(connectionFailed(error));
    // A refusal followed by a close is still the refusal.
    const onClose = () => finish(refusal ?? connectionClosed());
    if (socket.destroyed) return finish(connectionClosed());
    socket.on('data', onData).once('error', onError).once('close', onClose);
    socket.write(serialize.query(`SET ROLE ${quoteIdentifier(role)}`));
    if (session.leftover.length > 0) onData(session.leftover);
    socket.resume();
  });
}
