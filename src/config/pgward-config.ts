/**
 * The shape of pgward.yaml and its reader. Every key is checked (unknown keys are errors) and every
 * problem is reported with file:line:column and a dotted path.
 */

import path from 'node:path';
import { ConfigError } from '../errors/config-error.ts';
import { DEFAULT_MAX_MESSAGE_LENGTH } from '../wire/limits.ts';
import { type ListenAddress, parseListenAddress } from './listen-address.ts';
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
  caFile: string | undefined;
  /** Accept direct TLS (PostgreSQL 17 `sslnegotiation=direct`, ALPN `postgresql`). */
  direct: boolean;
}

/** Upstream TLS modes, libpq's sslmode words. */
export const UPSTREAM_TLS_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type UpstreamTlsMode = (typeof UPSTREAM_TLS_MODES)[number];

/** How pgward logs in to the upstream server. */
export interface UpstreamLoginConfig {
  /** `same`: as the client's user; `service`: always as `user`. */
  mode: 'same' | 'service';
  user: string | undefined;
  password: string | undefined;
}

/** The real PostgreSQL server pgward relays to. */
export interface UpstreamConfig {
  host: string;
  port: number;
  tls: { mode: UpstreamTlsMode; caFile: string | undefined; serverName: string | undefined };
  login: UpstreamLoginConfig;
  connectTimeoutMs: number;
}

/** Limits on clients (each has a test). */
export interface LimitsConfig {
  /** Time from accept to the end of authentication (PostgreSQL's authentication_timeout). */
  authTimeoutMs: number;
  maxClients: number;
  /** Largest typed message accepted before the relay starts. */
  maxMessageLength: number;
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
    tls: ListenTlsConfig | null;
  };
  upstream: UpstreamConfig;
  hbaFile: string;
  usersFile: string | undefined;
  limits: LimitsConfig;
  log: { level: LogLevel };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Defaults for limits. */
export const DEFAULT_LIMITS: LimitsConfig = {
  authTimeoutMs: 60_000,
  maxClients: 10_000,
  maxMessageLength: DEFAULT_MAX_MESSAGE_LENGTH,
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
  const map = MapReader.open(at, ['cert', 'key', 'ca', 'direct']);
  if (!map) return undefined;
  const certFile = map.required('cert', readPath);
  const keyFile = map.required('key', readPath);
  const caFile = map.optional('ca', readPath);
  const direct = map.optional('direct', readBoolean, true);
  if (certFile === undefined || keyFile === undefined) return undefined;
  return { certFile, keyFile, caFile, direct };
}

function readListen(at: At): PgwardConfig['listen'] | undefined {
  const map = MapReader.open(at, ['pg', 'unix_socket_dir', 'http', 'tls']);
  if (!map) return undefined;
  const pg = map.optional('pg', (a) => readList(a, readListenAddress, true), [
    { host: '127.0.0.1', port: 6432 },
  ]);
  const unixSocketDir = map.optional('unix_socket_dir', readPath, null);
  const http = map.optional('http', readListenAddress, null);
  const tls = map.optional('tls', readListenTls, null);
  if (pg?.length === 0) at.file.error(map.at('pg').node, `${at.path}.pg`, 'at least one address is needed');
  if (pg === undefined || unixSocketDir === undefined || http === undefined || tls === undefined)
    return undefined;
  return { pg, unixSocketDir, http, tls };
}

function readUpstreamLogin(at: At): UpstreamLoginConfig | undefined {
  const map = MapReader.open(at, ['mode', 'user', 'password']);
  if (!map) return undefined;
  const mode = map.optional('mode', (a) => readChoice(a, ['same', 'service'] as const), 'same');
  const user = map.optional('user', readString);
  const password = map.optional('password', readSecret);
  if (mode === 'service' && user === undefined) {
    at.file.error(map.node, at.path, 'mode "service" needs a "user" to log in as');
  }
  if (mode === 'same' && map.has('user')) {
    at.file.error(
      map.keyNode('user'),
      `${at.path}.user`,
      'mode "same" logs in as the client\'s user; "user" applies to mode "service"',
    );
  }
  if (mode === undefined) return undefined;
  return { mode, user, password };
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

function readUpstream(at: At): UpstreamConfig | undefined {
  const map = MapReader.open(at, ['host', 'port', 'tls', 'login', 'connect_timeout_ms']);
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
  const connectTimeoutMs = map.optional('connect_timeout_ms', (a) => readInteger(a, 1, 600_000), 5000);
  if (host === undefined || port === undefined || tls === undefined || login === undefined) return undefined;
  if (connectTimeoutMs === undefined) return undefined;
  return { host, port, tls, login, connectTimeoutMs };
}

function readLimits(at: At): LimitsConfig | undefined {
  const map = MapReader.open(at, ['auth_timeout_ms', 'max_clients', 'max_message_length']);
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
  const maxMessageLength = map.optional(
    'max_message_length',
    (a) => readInteger(a, 1024, 64 * 1024 * 1024),
    DEFAULT_LIMITS.maxMessageLength,
  );
  if (authTimeoutMs === undefined || maxClients === undefined || maxMessageLength === undefined)
    return undefined;
  return { authTimeoutMs, maxClients, maxMessageLength };
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
    'limits',
    'log',
  ]);
  if (!top) throw new ConfigError(yaml.errors);
  const listen = top.optional('listen', readListen, {
    pg: [{ host: '127.0.0.1', port: 6432 }],
    unixSocketDir: null,
    http: null,
    tls: null,
  });
  const upstream = top.required('upstream', readUpstream);
  const hbaFile = top.optional('hba', readPath, path.join(yaml.dir, 'hba.yaml'));
  const usersFile = top.optional('users', readPath);
  const limits = top.optional('limits', readLimits, DEFAULT_LIMITS);
  const log = top.optional('log', readLog, { level: 'info' as const });
  yaml.throwIfErrors();
  if (!listen || !upstream || !hbaFile || !limits || !log) throw new ConfigError(yaml.errors);
  return { file: yaml.file, listen, upstream, hbaFile, usersFile, limits, log };
}
