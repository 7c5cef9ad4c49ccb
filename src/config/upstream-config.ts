/**
 * The `upstream` and `auth_query` sections of pgward.yaml: the real PostgreSQL pgward relays to, how
 * it logs in there (DESIGN.md "Upstream login"), and the query that looks client verifiers up in it.
 */

import { type At, MapReader, readChoice, readInteger, readPath, readSecret, readString } from './readers.ts';

/** Upstream TLS modes, libpq's sslmode words. */
export const UPSTREAM_TLS_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type UpstreamTlsMode = (typeof UPSTREAM_TLS_MODES)[number];

/**
 * How pgward logs in to the upstream server:
 * - `same`: as the client's user, with the configured `password`;
 * - `service`: always as `user`, with `password`;
 * - `passthrough`: as the client's user, with the cleartext password the client gave (`password` and
 *   `http` methods);
 * - `scram-passthrough`: as the client's user, with the SCRAM ClientKey recovered from the client's
 *   proof, when the upstream holds the same verifier (as PgBouncer does with auth_query).
 */
export const LOGIN_MODES = ['same', 'service', 'passthrough', 'scram-passthrough'] as const;
export type LoginMode = (typeof LOGIN_MODES)[number];

/** One way of logging in upstream. */
export interface UpstreamLoginConfig {
  mode: LoginMode;
  user: string | undefined;
  password: string | undefined;
  /** pgward's own client certificate for the upstream's TLS handshake (its `cert` method). */
  clientCertificate?: { certFile: string; keyFile: string } | undefined;
}

/** The real PostgreSQL server pgward relays to. */
export interface UpstreamConfig {
  host: string;
  port: number;
  tls: { mode: UpstreamTlsMode; caFile: string | undefined; serverName: string | undefined };
  /** The login used unless a rule or a user names another. */
  login: UpstreamLoginConfig;
  /** Named logins that HBA rules (`upstream_login`) and users (users.yaml) may choose. */
  logins: ReadonlyMap<string, UpstreamLoginConfig>;
  connectTimeoutMs: number;
}

/** Looking client verifiers up in the upstream (PgBouncer's auth_query). */
export interface AuthQueryConfig {
  /** The query: one parameter ($1, the user name), returning the name and its stored secret. */
  query: string;
  /** The lookup login: a dedicated user, never a client's. */
  user: string;
  password: string | undefined;
  database: string;
  poolSize: number;
  /** How long an answer (found or not) is reused. */
  cacheTtlMs: number;
}

/** PgBouncer's default: pg_shadow holds SCRAM verifiers and md5 hashes. */
export const DEFAULT_AUTH_QUERY = 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1';

/** Reads one login; `named` logins must say their mode. */
export function readUpstreamLogin(at: At): UpstreamLoginConfig | undefined {
  const map = MapReader.open(at, ['mode', 'user', 'password', 'cert', 'key']);
  if (!map) return undefined;
  const mode = map.optional('mode', (a) => readChoice(a, LOGIN_MODES), 'same');
  const user = map.optional('user', readString);
  const password = map.optional('password', readSecret);
  const certFile = map.optional('cert', readPath);
  const keyFile = map.optional('key', readPath);
  if ((certFile === undefined) !== (keyFile === undefined) && (map.has('cert') || map.has('key'))) {
    at.file.error(map.node, at.path, 'a client certificate needs both "cert" and "key"');
  }
  if (mode === 'service' && user === undefined) {
    at.file.error(map.node, at.path, 'mode "service" needs a "user" to log in as');
  }
  if (mode !== 'service' && map.has('user')) {
    at.file.error(
      map.keyNode('user'),
      `${at.path}.user`,
      `mode "${mode}" logs in as the client's user; "user" applies to mode "service"`,
    );
  }
  if ((mode === 'passthrough' || mode === 'scram-passthrough') && map.has('password')) {
    at.file.error(
      map.keyNode('password'),
      `${at.path}.password`,
      `mode "${mode}" logs in with what the client proved; a password of its own does not apply`,
    );
  }
  if (mode === undefined) return undefined;
  return {
    mode,
    user,
    password,
    ...(certFile !== undefined && keyFile !== undefined ? { clientCertificate: { certFile, keyFile } } : {}),
  };
}

function readUpstreamTls(at: At): UpstreamConfig['tls'] | undefined {
  const map = MapReader.open(at, ['mode', 'ca', 'server_name']);
  if (!map) return undefined;
  const mode = map.optional('mode', (a) => readChoice(a, UPSTREAM_TLS_MODES), 'prefer');
  const caFile = map.optional('ca', readPath);
  const serverName = map.optional('server_name', readString);
  if ((mode === 'verify-ca' || mode === 'verify-full') && caFile === undefined) {
    at.file.error(map.node, at.path, `mode "${mode}" needs "ca" (the CA bundle to verify the server with)`);
  }
  return mode === undefined ? undefined : { mode, caFile, serverName };
}

function readNamedLogins(at: At): Map<string, UpstreamLoginConfig> | undefined {
  const map = MapReader.open(at, 'any');
  if (!map) return undefined;
  const logins = new Map<string, UpstreamLoginConfig>();
  for (const name of map.keys()) {
    const login = readUpstreamLogin(map.at(name));
    if (login) logins.set(name, login);
  }
  return logins;
}

/** Reads `upstream`. */
export function readUpstream(at: At): UpstreamConfig | undefined {
  const map = MapReader.open(at, ['host', 'port', 'tls', 'login', 'logins', 'connect_timeout_ms']);
  if (!map) return undefined;
  const host = map.required('host', readString);
  const port = map.optional('port', (a) => readInteger(a, 1, 65535), 5432);
  const tls = map.optional('tls', readUpstreamTls, {
    mode: 'prefer',
    caFile: undefined,
    serverName: undefined,
  });
  const login = map.optional('login', readUpstreamLogin, {
    mode: 'same',
    user: undefined,
    password: undefined,
  });
  const logins = map.optional('logins', readNamedLogins, new Map());
  const connectTimeoutMs = map.optional('connect_timeout_ms', (a) => readInteger(a, 1, 600_000), 5000);
  if (host === undefined || port === undefined || tls === undefined || login === undefined) return undefined;
  if (logins === undefined || connectTimeoutMs === undefined) return undefined;
  return { host, port, tls, login, logins, connectTimeoutMs };
}

/** Reads `auth_query`. */
export function readAuthQuery(at: At): AuthQueryConfig | undefined {
  const map = MapReader.open(at, ['query', 'user', 'password', 'database', 'pool_size', 'cache_ttl_ms']);
  if (!map) return undefined;
  const query = map.optional('query', readString, DEFAULT_AUTH_QUERY);
  const user = map.required('user', readString);
  const password = map.optional('password', readSecret);
  const database = map.optional('database', readString, 'postgres');
  const poolSize = map.optional('pool_size', (a) => readInteger(a, 1, 100), 4);
  const cacheTtlMs = map.optional('cache_ttl_ms', (a) => readInteger(a, 0, 86_400_000), 30_000);
  if (query !== undefined && !/\$1\b/.test(query)) {
    at.file.error(map.at('query').node, `${at.path}.query`, 'the query must take the user name as $1');
  }
  if (query === undefined || user === undefined || database === undefined) return undefined;
  if (poolSize === undefined || cacheTtlMs === undefined) return undefined;
  return { query, user, password, database, poolSize, cacheTtlMs };
}
