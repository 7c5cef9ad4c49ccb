/**
 * The auth_query credential source (PgBouncer's auth_query): looks a user's stored secret up in the
 * upstream with a dedicated lookup login, through a small pool, and caches the answer for a while.
 * It owns the lookup connections (TLS as the upstream's libpq sslmode says), reading the query's row,
 * and the cache. It does not decide what an unknown user or a failed lookup means to a client: the
 * methods treat `undefined` like a wrong password, and the session turns the thrown PgError into a
 * FATAL. Nothing a client sent, apart from the user name bound as $1, reaches the lookup connection.
 *
 * @see https://www.pgbouncer.org/config.html#auth_query
 */

import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import pg from 'pg';
import type { Logger } from 'pino';
import { parseScramVerifier } from '../auth/scram/verifier.ts';
import type { AuthQueryConfig, UpstreamConfig } from '../config/upstream-config.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import type { CredentialSource, StoredCredentials } from './credentials.ts';

/** The application_name of every lookup connection, so pg_stat_activity tells them apart. */
export const AUTH_QUERY_APPLICATION_NAME = 'pgward auth_query';
/** At most this many answers (found or not) are cached; the oldest goes first. */
export const AUTH_QUERY_CACHE_MAX_ENTRIES = 10_000;
/** The lookup's statement_timeout: a stuck query must not hold a pool connection for ever. */
export const AUTH_QUERY_STATEMENT_TIMEOUT_MS = 5_000;

/** `md5` + md5(password ‖ user), as pg_authid stores it. */
const MD5_HASH = /^md5[0-9a-f]{32}$/;
/** What pg says when the server answers the SSLRequest with 'N'. */
const TLS_REFUSED = 'The server does not support SSL connections';

/** A credential source backed by the upstream; `close()` ends its connections. */
export interface AuthQuerySource extends CredentialSource {
  /** Ends the pool: idle connections at once, busy ones when their lookup ends. */
  close(): Promise<void>;
}

interface CacheEntry {
  answer: StoredCredentials | undefined;
  expiresAt: number;
}

/** Sets `key` as the newest entry and drops the oldest one past the bound. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > AUTH_QUERY_CACHE_MAX_ENTRIES) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
}

/**
 * pg's `ssl` for the upstream's tls mode, with libpq's sslmode meaning (as src/upstream/connect.ts).
 * `prefer` starts out like `require`; the source drops to plaintext when the server refuses TLS.
 * pg sends the host as SNI when it is a name, so `serverName` only changes what verify-full checks.
 *
 * @see https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
 */
function readTlsOptions(upstream: UpstreamConfig): tls.ConnectionOptions | false {
  const { mode, caFile, serverName } = upstream.tls;
  if (mode === 'disable') return false;
  let ca: { ca: Buffer } | undefined;
  try {
    ca = caFile === undefined ? undefined : { ca: readFileSync(caFile) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`auth_query: cannot read the upstream CA file "${caFile}": ${reason}`, { cause: error });
  }
  const verify = mode === 'verify-ca' || mode === 'verify-full';
  return {
    ...ca,
    rejectUnauthorized: verify,
    checkServerIdentity:
      mode === 'verify-full'
        ? (_host, cert) => tls.checkServerIdentity(serverName ?? upstream.host, cert)
        : () => undefined,
  };
}

/** Why a lookup failed: the upstream could not be used, or the lookup itself is wrong. */
type LookupFailureKind = 'unreachable' | 'misconfigured';

/** Unreachable or restarting upstream (no SQLSTATE, class 08, 57P0x); anything else is configuration. */
function classifyUpstreamError(error: unknown): LookupFailureKind {
  if (!(error instanceof pg.DatabaseError) || error.code === undefined) return 'unreachable';
  return error.code.startsWith('08') || error.code.startsWith('57P') ? 'unreachable' : 'misconfigured';
}

/**
 * The PgError a client's session ends with when the lookup failed. A misconfigured lookup (a bad
 * query, missing privileges, a wrong lookup password) tells the client nothing more than XX000.
 */
function lookupFailure(user: string, reason: string, kind: LookupFailureKind): PgError {
  const sqlstate = kind === 'unreachable' ? SqlState.ConnectionFailure : SqlState.InternalError;
  return new PgError(sqlstate, 'auth_query failed', {
    logMessage: `auth_query failed for user "${user}": ${reason}`,
  });
}

/** Creates the source; the pool connects on the first lookup, not here. */
export function createAuthQuerySource(
  config: AuthQueryConfig,
  upstream: UpstreamConfig,
  log: Logger,
): AuthQuerySource {
  const ssl = readTlsOptions(upstream);
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<StoredCredentials | undefined>>();
  const warned = new Map<string, true>();

  const createPool = (withTls: tls.ConnectionOptions | false): pg.Pool => {
    const created = new pg.Pool({
      host: upstream.host,
      port: upstream.port,
      database: config.database,
      user: config.user,
      // A function, so pg never falls back to PGPASSWORD or ~/.pgpass: the configured password or none.
      password: () => config.password ?? '',
      ssl: withTls,
      application_name: AUTH_QUERY_APPLICATION_NAME,
      statement_timeout: AUTH_QUERY_STATEMENT_TIMEOUT_MS,
      connectionTimeoutMillis: upstream.connectTimeoutMs,
      max: config.poolSize,
    });
    // An idle connection the server closed (restart, admin shutdown): the pool drops it and opens
    // another on the next lookup.
    created.on('error', (error) => log.warn({ err: error.message }, 'auth_query connection lost'));
    return created;
  };
  let pool = createPool(ssl);
  let closing: Promise<void> | undefined;

  const warnOnce = (user: string, message: string) => {
    if (warned.has(user)) return;
    remember(warned, user, true);
    log.warn({ user }, message);
  };

  const runQuery = async (user: string): Promise<pg.QueryArrayResult<unknown[]>> => {
    const query = { text: config.query, values: [user], rowMode: 'array' as const };
    const used = pool;
    try {
      return await used.query<unknown[]>(query);
    } catch (error) {
      const refused = error instanceof Error && error.message === TLS_REFUSED;
      if (upstream.tls.mode !== 'prefer' || !refused) throw error;
      // libpq's prefer: TLS when the server offers it, else plaintext. Once refused, this source stays
      // on plaintext until it is created again (a configuration reload).
      if (used === pool) {
        log.info('the upstream does not offer TLS; auth_query continues without it (tls mode "prefer")');
        pool = createPool(false);
        void used.end().catch(() => undefined);
      }
      return await pool.query<unknown[]>(query);
    }
  };

  const readAnswer = (user: string, result: pg.QueryArrayResult<unknown[]>) => {
    if (result.fields.length < 2) {
      throw lookupFailure(
        user,
        `the query returned ${result.fields.length} column(s), not name and secret`,
        'misconfigured',
      );
    }
    if (result.rows.length > 1) {
      throw lookupFailure(
        user,
        `the query returned ${result.rows.length} rows for one user`,
        'misconfigured',
      );
    }
    const [name, secret] = result.rows[0] ?? [];
    if (secret === null || secret === undefined) return undefined;
    if (name !== user) {
      // A query matching loosely (LIKE, lower()) must not hand one user's secret to another name.
      warnOnce(user, 'auth_query returned a row for another user name; treating the user as unknown');
      return undefined;
    }
    if (typeof secret === 'string') {
      const scram = parseScramVerifier(secret);
      if (scram) return { scram, md5: undefined };
      if (MD5_HASH.test(secret)) return { scram: undefined, md5: secret };
    }
    warnOnce(
      user,
      'auth_query returned a secret that is neither a SCRAM-SHA-256 verifier nor an md5 hash (a cleartext password?); treating the user as unknown',
    );
    return undefined;
  };

  const lookupUpstream = async (user: string): Promise<StoredCredentials | undefined> => {
    let result: pg.QueryArrayResult<unknown[]>;
    try {
      result = await runQuery(user);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const code = error instanceof pg.DatabaseError ? error.code : undefined;
      log.error({ user, sqlstate: code, err: reason }, 'auth_query failed');
      throw lookupFailure(user, reason, classifyUpstreamError(error));
    }
    try {
      return readAnswer(user, result);
    } catch (error) {
      if (error instanceof PgError) log.error({ user, err: error.logMessage }, 'auth_query failed');
      throw error;
    }
  };

  return {
    lookup(user) {
      const cached = cache.get(user);
      if (cached && cached.expiresAt > performance.now()) return Promise.resolve(cached.answer);
      if (cached) cache.delete(user);
      const pending = inFlight.get(user);
      if (pending) return pending;
      const started = lookupUpstream(user)
        .then((answer) => {
          if (config.cacheTtlMs > 0) {
            remember(cache, user, { answer, expiresAt: performance.now() + config.cacheTtlMs });
          }
          return answer;
        })
        .finally(() => inFlight.delete(user));
      inFlight.set(user, started);
      return started;
    },
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}
