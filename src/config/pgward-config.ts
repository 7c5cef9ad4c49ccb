/**
 * The shape of pgward.yaml and its reader. Every key is checked (unknown keys are errors) and every
 * problem is reported with file:line:column and a dotted path.
 */

import path from 'node:path';
import { ConfigError } from '../errors/config-error.ts';
import { DEFAULT_MAX_MESSAGE_LENGTH } from '../wire/limits.ts';
import { DEFAULT_HTTP, type HttpConfig, readHttp } from './http-config.ts';
import { type ListenAddress, parseListenAddress } from './listen-address.ts';
import { type AuthQueryConfig, readAuthQuery, readUpstream, type UpstreamConfig } from './upstream-config.ts';

export type { HttpConfig } from './http-config.ts';
export type {
  AuthQueryConfig,
  LoginMode,
  UpstreamConfig,
  UpstreamLoginConfig,
  UpstreamTlsMode,
} from './upstream-config.ts';
export { LOGIN_MODES, UPSTREAM_TLS_MODES } from './upstream-config.ts';

import { readTokenValidators, type TokenValidatorConfig } from '../tokens/validator-config.ts';
import {
  type At,
  MapReader,
  readBoolean,
  readChoice,
  readInteger,
  readList,
  readPath,
  readSecret,
  readString,
} from './readers.ts';
import { YamlFile } from './yaml-file.ts';

/** TLS material for the client-facing listener. */
export interface ListenTlsConfig {
  certFile: string;
  keyFile: string;
  /** CAs client certificates are verified against; with it, clients are asked for a certificate. */
  caFile: string | undefined;
  /** A certificate revocation list (PEM) checked with `caFile`. */
  crlFile: string | undefined;
  /** Accept direct TLS (PostgreSQL 17 `sslnegotiation=direct`, ALPN `postgresql`). */
  direct: boolean;
}

/** Slowing down repeated failures of one client address and user (brute force). */
export interface FailureDelayConfig {
  /** Failures answered at once before the delay starts. */
  after: number;
  /** The first delay; each further failure doubles it, up to `maxMs`. */
  initialMs: number;
  maxMs: number;
  /** A client address and user with no failure for this long start again from zero. */
  forgetAfterMs: number;
}

/** Limits on clients (each has a test). */
export interface LimitsConfig {
  /** Time from accept to the end of authentication (PostgreSQL's authentication_timeout). */
  authTimeoutMs: number;
  maxClients: number;
  /** Connections still negotiating or authenticating at once; beyond it new ones get 53300. */
  maxPendingAuth: number;
  /** Largest typed message accepted before the relay starts. */
  maxMessageLength: number;
  authFailureDelay: FailureDelayConfig;
}

/** The whole of pgward.yaml. */
export interface PgwardConfig {
  /** The file read, or null for a configuration built in code (the embedded default). */
  file: string | null;
  listen: {
    pg: ListenAddress[];
    /** Folder of a Unix socket `.s.PGSQL.<port>` (port of the first pg address), or null. */
    unixSocketDir: string | null;
    http: ListenAddress | null;
    /** The HTTP endpoint over TLS (with `tls`'s certificate, and client certificates when `tls.ca`). */
    https: ListenAddress | null;
    tls: ListenTlsConfig | null;
  };
  http: HttpConfig;
  upstream: UpstreamConfig;
  hbaFile: string;
  usersFile: string | undefined;
  authQuery: AuthQueryConfig | null;
  /**
   * The secret unknown users' mock SCRAM salts derive from. It must outlive restarts, or a client
   * could tell unknown users (whose salt changed) from real ones; null: a random one per process.
   */
  mockAuthSecret: string | null;
  limits: LimitsConfig;
  /** Named token validators (`token_validators`), for the jwt and oauth methods. */
  tokenValidators: TokenValidatorConfig[];
  log: { level: LogLevel };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Defaults for limits. */
export const DEFAULT_LIMITS: LimitsConfig = {
  authTimeoutMs: 60_000,
  maxClients: 10_000,
  maxPendingAuth: 1000,
  maxMessageLength: DEFAULT_MAX_MESSAGE_LENGTH,
  authFailureDelay: { after: 5, initialMs: 250, maxMs: 10_000, forgetAfterMs: 600_000 },
};

function readListenAddress(at: At): ListenAddress | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  const parsed = parseListenAddress(text);
  if (typeof parsed === 'string') {
    at.file.error(at.node, at.path, parsed);
    return undefined;
  }
  return parsed;
}

function readListenTls(at: At): ListenTlsConfig | undefined {
  const map = MapReader.open(at, ['cert', 'key', 'ca', 'crl', 'direct']);
  if (!map) return undefined;
  const certFile = map.required('cert', readPath);
  const keyFile = map.required('key', readPath);
  const caFile = map.optional('ca', readPath);
  const crlFile = map.optional('crl', readPath);
  const direct = map.optional('direct', readBoolean, true);
  if (crlFile !== undefined && !map.has('ca')) {
    at.file.error(
      map.keyNode('crl'),
      `${at.path}.crl`,
      'a CRL needs "ca": client certificates are only checked against a CA',
    );
  }
  if (certFile === undefined || keyFile === undefined) return undefined;
  return { certFile, keyFile, caFile, crlFile, direct };
}

function readListen(at: At): PgwardConfig['listen'] | undefined {
  const map = MapReader.open(at, ['pg', 'unix_socket_dir', 'http', 'https', 'tls']);
  if (!map) return undefined;
  const pg = map.optional('pg', (a) => readList(a, readListenAddress, true), [
    { host: '127.0.0.1', port: 6432 },
  ]);
  const unixSocketDir = map.optional('unix_socket_dir', readPath, null);
  const http = map.optional('http', readListenAddress, null);
  const https = map.optional('https', readListenAddress, null);
  const tls = map.optional('tls', readListenTls, null);
  if (pg?.length === 0) at.file.error(map.at('pg').node, `${at.path}.pg`, 'at least one address is needed');
  if (https && !map.has('tls'))
    at.file.error(map.keyNode('https'), `${at.path}.https`, 'https needs "tls" (its certificate and key)');
  if (pg === undefined || unixSocketDir === undefined || http === undefined || tls === undefined)
    return undefined;
  if (https === undefined) return undefined;
  return { pg, unixSocketDir, http, https, tls };
}

function readFailureDelay(at: At): FailureDelayConfig | undefined {
  const map = MapReader.open(at, ['after', 'initial_ms', 'max_ms', 'forget_after_ms']);
  if (!map) return undefined;
  const defaults = DEFAULT_LIMITS.authFailureDelay;
  const after = map.optional('after', (a) => readInteger(a, 0, 1000), defaults.after);
  const initialMs = map.optional('initial_ms', (a) => readInteger(a, 0, 600_000), defaults.initialMs);
  const maxMs = map.optional('max_ms', (a) => readInteger(a, 0, 600_000), defaults.maxMs);
  const forgetAfterMs = map.optional(
    'forget_after_ms',
    (a) => readInteger(a, 1000, 86_400_000),
    defaults.forgetAfterMs,
  );
  if (initialMs !== undefined && maxMs !== undefined && maxMs < initialMs) {
    at.file.error(map.at('max_ms').node, `${at.path}.max_ms`, `must be at least initial_ms (${initialMs})`);
  }
  if (after === undefined || initialMs === undefined || maxMs === undefined || forgetAfterMs === undefined)
    return undefined;
  return { after, initialMs, maxMs, forgetAfterMs };
}

function readLimits(at: At): LimitsConfig | undefined {
  const map = MapReader.open(at, [
    'auth_timeout_ms',
    'max_clients',
    'max_pending_auth',
    'max_message_length',
    'auth_failure_delay',
  ]);
  if (!map) return undefined;
  const authTimeoutMs = map.optional(
    'auth_timeout_ms',
    (a) => readInteger(a, 1, 600_000),
    DEFAULT_LIMITS.authTimeoutMs,
  );
  const maxClients = map.optional(
    'max_clients',
    (a) => readInteger(a, 1, 1_000_000),
    DEFAULT_LIMITS.maxClients,
  );
  const maxPendingAuth = map.optional(
    'max_pending_auth',
    (a) => readInteger(a, 1, 1_000_000),
    DEFAULT_LIMITS.maxPendingAuth,
  );
  const maxMessageLength = map.optional(
    'max_message_length',
    (a) => readInteger(a, 1024, 64 * 1024 * 1024),
    DEFAULT_LIMITS.maxMessageLength,
  );
  const authFailureDelay = map.optional(
    'auth_failure_delay',
    readFailureDelay,
    DEFAULT_LIMITS.authFailureDelay,
  );
  if (authTimeoutMs === undefined || maxClients === undefined || maxMessageLength === undefined)
    return undefined;
  if (maxPendingAuth === undefined || authFailureDelay === undefined) return undefined;
  return { authTimeoutMs, maxClients, maxPendingAuth, maxMessageLength, authFailureDelay };
}

function readLog(at: At): PgwardConfig['log'] | undefined {
  const map = MapReader.open(at, ['level']);
  const level = map?.optional('level', (a) => readChoice(a, LOG_LEVELS), 'info');
  return level === undefined ? undefined : { level };
}

/** Reads pgward.yaml from text; throws ConfigError listing every problem. */
export function parsePgwardConfig(file: string, text: string): PgwardConfig {
  return readConfig(new YamlFile(file, text));
}

/** Reads pgward.yaml from disk; throws ConfigError listing every problem. */
export function loadPgwardConfig(file: string): PgwardConfig {
  return readConfig(YamlFile.read(file));
}

function readConfig(yaml: YamlFile): PgwardConfig {
  yaml.throwIfErrors();
  const top = MapReader.open({ file: yaml, node: yaml.root ?? undefined, path: '' }, [
    'listen',
    'upstream',
    'hba',
    'users',
    'auth_query',
    'mock_auth_secret',
    'limits',
    'token_validators',
    'http',
    'log',
  ]);
  if (!top) throw new ConfigError(yaml.errors);
  const listen = top.optional('listen', readListen, {
    pg: [{ host: '127.0.0.1', port: 6432 }],
    unixSocketDir: null,
    http: null,
    https: null,
    tls: null,
  });
  const upstream = top.required('upstream', readUpstream);
  const hbaFile = top.optional('hba', readPath, path.join(yaml.dir, 'hba.yaml'));
  const usersFile = top.optional('users', readPath);
  const authQuery = top.optional('auth_query', readAuthQuery, null);
  const mockAuthSecret = top.optional('mock_auth_secret', readSecret, null);
  const limits = top.optional('limits', readLimits, DEFAULT_LIMITS);
  const tokenValidators = top.optional('token_validators', readTokenValidators, []);
  const http = top.optional('http', readHttp, DEFAULT_HTTP);
  const log = top.optional('log', readLog, { level: 'info' as const });
  yaml.throwIfErrors();
  if (
    !listen ||
    !upstream ||
    !hbaFile ||
    !limits ||
    !http ||
    !tokenValidators ||
    !log ||
    authQuery === undefined ||
    mockAuthSecret === undefined
  )
    throw new ConfigError(yaml.errors);
  return {
    file: yaml.file,
    listen,
    upstream,
    hbaFile,
    usersFile,
    authQuery,
    mockAuthSecret,
    limits,
    tokenValidators,
    http,
    log,
  };
}
