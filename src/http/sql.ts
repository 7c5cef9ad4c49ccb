/**
 * `POST /sql`: one statement over HTTP, authenticated by the same HBA rules as the pg front end
 * (`protocol: http` or `any`). The phase order of a request: read the body → name the user → HBA and the
 * rule's method (shared with the pg session) → upstream login (shared) → run the statement → JSON.
 *
 * The user is the Basic credentials' user; for a Bearer token (seed 004's JWT over HTTP), `?user=`, else
 * the user whose users.yaml token binding names the token's iss and username (CrateDB), else its `sub`;
 * without credentials, the client certificate's CN (seed 004: "over HTTP the CN is the user when none
 * is given"); without one, `http.default_user` (CrateDB's auth.trust.http_default_user). A rule's
 * password challenge is answered with the Basic password, a `jwt` or `oauth` rule's with the token.
 *
 * Request:  {"stmt": "SELECT $1::int AS n", "args": [1]}       (?database=NAME, default: postgres)
 * Response: {"cols": ["n"], "col_types": [23], "rows": [[1]], "rowcount": 1, "command": "SELECT 1"}
 * Errors:   {"error": {"code": "<SQLSTATE>", "message": "...", "detail"?, "hint"?}}, with an HTTP status
 *           from the SQLSTATE's class (28 → 401 with WWW-Authenticate, 53 → 503, 08 → 502, …).
 */

import type http from 'node:http';
import type { Logger } from 'pino';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { normalizeClientAddress } from '../hba/address.ts';
import type { ConnectionFacts } from '../hba/rule.ts';
import { newConnectionId } from '../observe/logger.ts';
import { authenticate, groupsOf } from '../proxy/authenticate.ts';
import { openUpstream } from '../proxy/open-upstream.ts';
import type { Runtime } from '../proxy/runtime.ts';
import type { PeerCertificate } from '../tls/peer-certificate.ts';
import { sendUpstreamCancel } from '../upstream/cancel.ts';
import type { UpstreamSession } from '../upstream/login.ts';
import { type JsonValue, QueryError, runStatement } from '../upstream/query.ts';
import { parseAuthorization } from './authorization.ts';
import { authenticateHeader, challengeTransport, userOf } from './credentials.ts';

/** Startup parameters of HTTP logins upstream. */
const HTTP_PARAMETERS: ReadonlyMap<string, string> = new Map([
  ['application_name', 'pgward-http'],
  ['client_encoding', 'UTF8'],
]);

/** The database of a request without `?database=` (HTTP clients have no libpq default to follow). */
const DEFAULT_DATABASE = 'postgres';

/** A request-shape error with its own HTTP status (the SQLSTATE alone would not say 413). */
class HttpError extends PgError {
  readonly status: number;
  constructor(status: number, sqlstate: string, message: string, detail?: string) {
    super(sqlstate, message, { detail, severity: 'ERROR' });
    this.status = status;
  }
}

/** What the TLS handshake of an HTTPS connection established. */
export interface ClientTls {
  /** The client's certificate, when it presented one. */
  peerCertificate: PeerCertificate | null;
}

/** A statement and its arguments. */
interface SqlRequest {
  stmt: string;
  args: JsonValue[];
}

/** Reads the body, refusing one longer than `max` bytes (413) without buffering the rest. */
function readBody(request: http.IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(413, SqlState.ProgramLimitExceeded, `request body larger than ${max} bytes`);
  if (Number(request.headers['content-length'] ?? 0) > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > max) {
        request.removeAllListeners('data');
        request.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => resolve(Buffer.concat(chunks)));
    request.once('error', reject);
  });
}

function badRequest(message: string): HttpError {
  return new HttpError(400, SqlState.InvalidTextRepresentation, message);
}

/** Parses `{"stmt": "...", "args": [...]}`; unknown keys are refused, as in pgward.yaml. */
export function parseSqlRequest(body: Buffer): SqlRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw badRequest(`request body is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw badRequest('request body must be a JSON object with "stmt"');
  const fields = parsed as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (key !== 'stmt' && key !== 'args') throw badRequest(`unknown key "${key}" (expected "stmt", "args")`);
  }
  const { stmt, args = [] } = fields;
  if (typeof stmt !== 'string' || stmt.trim() === '') throw badRequest('"stmt" must be a non-empty string');
  if (stmt.includes('\0')) throw badRequest('"stmt" must not contain a NUL character');
  if (!Array.isArray(args)) throw badRequest('"args" must be a list');
  return { stmt, args: args as JsonValue[] };
}

/** The HTTP status for an error a request ends with. */
export function httpStatusOf(error: PgError): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof QueryError) return 400;
  const code = error.sqlstate;
  if (code === SqlState.ProtocolViolation) return 400;
  switch (code.slice(0, 2)) {
    case '28':
      return 401;
    case '53':
    case '57':
      return 503;
    case '08':
      return 502;
    case 'XX':
      return 500;
    default:
      return 400;
  }
}

function sendJson(
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (response.headersSent || response.destroyed) return;
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function errorBody(error: PgError): unknown {
  return {
    error: {
      code: error.sqlstate,
      message: error.message,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
      ...(error.hint === undefined ? {} : { hint: error.hint }),
    },
  };
}

/** Handles one `POST /sql` request; never rejects. */
export async function handleSqlRequest(
  runtime: Runtime,
  request: http.IncomingMessage,
  response: http.ServerResponse,
  url: URL,
  tls: ClientTls | null,
): Promise<void> {
  const log = runtime.log.child({ conn: newConnectionId(), protocol: 'http' });
  const started = performance.now();
  let upstream: UpstreamSession | null = null;
  // A client that hangs up takes its statement along: PostgreSQL would notice the closed socket only
  // when it next writes, so the statement is cancelled first.
  response.once('close', () => {
    if (response.writableFinished || !upstream) return;
    const { processId, secretKey, socket } = upstream;
    sendUpstreamCancel(runtime.config.upstream, processId, secretKey)
      .catch((error: unknown) => log.warn({ err: (error as Error).message }, 'cancel forwarding failed'))
      .finally(() => socket.destroy());
  });
  try {
    const result = await runRequest(runtime, request, url, tls, log, (session) => {
      upstream = session;
    });
    sendJson(response, 200, result);
    log.info(
      { status: 200, rows: result.rowcount, ms: Math.round(performance.now() - started) },
      'http request',
    );
  } catch (error) {
    const pgError =
      error instanceof PgError ? error : new PgError(SqlState.InternalError, 'internal error in pgward');
    if (!(error instanceof PgError)) log.error({ err: error }, 'internal error');
    const status = httpStatusOf(pgError);
    sendJson(
      response,
      status,
      errorBody(pgError),
      status === 401
        ? { 'www-authenticate': authenticateHeader(request.headers.authorization, pgError) }
        : {},
    );
    log.info({ status, sqlstate: pgError.sqlstate, error: pgError.logMessage }, 'http request');
  }
}

async function runRequest(
  runtime: Runtime,
  request: http.IncomingMessage,
  url: URL,
  tls: ClientTls | null,
  log: Logger,
  upstreamOpened: (session: UpstreamSession) => void,
) {
  const config = runtime.config.http;
  const sql = parseSqlRequest(await readBody(request, config.maxBodyBytes));
  const authorization = parseAuthorization(request.headers.authorization);
  const socket = request.socket;
  const peerCertificate = tls?.peerCertificate ?? null;
  const user = userOf(runtime, authorization, url, peerCertificate);
  if (user === null)
    throw new PgError(SqlState.InvalidAuthorizationSpecification, 'no user name given', {
      hint:
        authorization.scheme === 'bearer'
          ? 'Name the user with ?user= or use a token with a "sub" claim.'
          : 'Send HTTP Basic credentials or a client certificate.',
    });
  const database = url.searchParams.get('database') || DEFAULT_DATABASE;
  // A NUL would end the name inside the upstream StartupMessage and let the rest of it set other
  // parameters (`?database=x%00user%00postgres`): such names are refused, as the wire never has them.
  for (const [what, name] of [
    ['user', user],
    ['database', database],
  ] as const) {
    if (name.includes('\0'))
      throw new HttpError(
        400,
        SqlState.InvalidParameterValue,
        `the ${what} name must not contain a NUL character`,
      );
  }
  const address = normalizeClientAddress(socket.remoteAddress);
  if (address === null) throw new PgError(SqlState.ConnectionFailure, 'client address unavailable');
  const facts: ConnectionFacts = {
    transport: 'tcp',
    address,
    tls: tls !== null,
    protocol: 'http',
    database,
    user,
    replication: false,
    groups: groupsOf(runtime, user),
    serverInterfaces: runtime.serverInterfaces,
  };
  const ticket = runtime.pendingAuth.tryEnter();
  if (!ticket) throw new PgError(SqlState.TooManyConnections, 'sorry, too many clients already');
  const authenticated = await authenticate(
    runtime,
    facts,
    { peerCertificate, channelBinding: null },
    challengeTransport(authorization),
    log,
  ).finally(() => ticket.release());
  const session = await openUpstream(runtime, authenticated, database, HTTP_PARAMETERS, log);
  upstreamOpened(session);
  const result = await runStatement(session, sql.stmt, sql.args, config.maxResultBytes);
  return {
    cols: result.columns.map((column) => column.name),
    col_types: result.columns.map((column) => column.typeOid),
    rows: result.rows,
    rowcount: result.rowCount,
    command: result.command,
  };
}
