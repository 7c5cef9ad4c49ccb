/**
 * Assembles a running pgward from a configuration: loads HBA and users, builds the TLS context, starts
 * the pg and HTTP listeners, reloads what can change live (SIGHUP, file watch), and stops again. Used
 * by the CLI and by the tests.
 */

import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import type { DestinationStream } from 'pino';
import { IMPLEMENTED_FEATURES } from './auth/registry.ts';
import { withCrossChecks } from './config/cross-checks.ts';
import { formatListenAddress, type ListenAddress } from './config/listen-address.ts';
import { loadPgwardConfig, type PgwardConfig } from './config/pgward-config.ts';
import { type FileWatch, watchFiles } from './config/watch.ts';
import { type AuthQuerySource, createAuthQuerySource } from './credentials/auth-query.ts';
import {
  type CredentialSource,
  chainCredentialSources,
  usersFileCredentials,
} from './credentials/credentials.ts';
import { EMPTY_USER_DIRECTORY, loadUsersFile, type UserDirectory } from './credentials/users-file.ts';
import { ConfigError } from './errors/config-error.ts';
import { serverInterfacesFrom } from './hba/address.ts';
import { type HbaTable, loadHbaFile } from './hba/parse.ts';
import { type HttpListener, startHttpServer, startHttpsServer } from './http/server.ts';
import { createLogger, type Logger } from './observe/logger.ts';
import { Metrics } from './observe/metrics.ts';
import { FailureDelays, PendingAuthGate } from './proxy/auth-throttle.ts';
import { CancelMap } from './proxy/cancel-map.ts';
import { PgListener } from './proxy/listener.ts';
import type { Runtime } from './proxy/runtime.ts';
import { ServerTlsContext } from './tls/server-context.ts';
import { TokenValidatorHolder } from './tokens/registry.ts';

/** A started pgward. */
export interface Pgward {
  runtime: Runtime;
  /** The pg addresses bound (port 0 resolved). */
  pgAddresses: ListenAddress[];
  /** The Unix socket path, when one is configured. */
  unixSocket: string | null;
  httpAddress: ListenAddress | null;
  httpsAddress: ListenAddress | null;
  log: Logger;
  /**
   * Re-reads pgward.yaml (when there is one), the HBA and users files and the TLS files. A file with an
   * error changes nothing; resolves true when the new configuration is in force.
   */
  reload(reason: string): boolean;
  /** Ends every session with 57P01 and stops listening. */
  close(): Promise<void>;
}

/** Options for the CLI and tests. */
export interface StartOptions {
  /** Where log lines go (tests read them back). */
  logDestination?: DestinationStream;
  /** Reload when a configuration file changes. */
  watch?: boolean;
}

/** The parts of the runtime a reload replaces. */
type LiveParts = Pick<Runtime, 'hba' | 'users' | 'tls' | 'serverInterfaces'>;

/** Loads every file a configuration names; throws ConfigError listing the problems of all of them. */
export function loadLiveParts(config: PgwardConfig): LiveParts {
  const problems: ConfigError[] = [];
  const attempt = <T>(load: () => T): T | undefined => {
    try {
      return load();
    } catch (error) {
      if (error instanceof ConfigError) problems.push(error);
      else throw error;
      return undefined;
    }
  };
  const upstreamLogins = new Set(config.upstream.logins.keys());
  const validators = new Set(config.tokenValidators.map((validator) => validator.name));
  const hba = attempt(() =>
    loadHbaFile(config.hbaFile, {
      features: IMPLEMENTED_FEATURES,
      references: { upstreamLogins, validators },
    }),
  );
  const users = attempt<UserDirectory>(() =>
    config.usersFile === undefined
      ? EMPTY_USER_DIRECTORY
      : loadUsersFile(config.usersFile, { upstreamLogins, validators }),
  );
  const tls = attempt(() => (config.listen.tls === null ? null : new ServerTlsContext(config.listen.tls)));
  if (problems.length > 0 || !hba || !users || tls === undefined) {
    throw new ConfigError(problems.flatMap((error) => error.problems));
  }
  return {
    hba: withCrossChecks(config, hba),
    users,
    tls,
    serverInterfaces: serverInterfacesFrom(os.networkInterfaces()),
  };
}

/** The files whose changes trigger a reload. */
function watchedFiles(config: PgwardConfig): string[] {
  const tls = config.listen.tls;
  return [
    ...(config.file ? [config.file] : []),
    config.hbaFile,
    ...(config.usersFile ? [config.usersFile] : []),
    ...(tls
      ? [
          tls.certFile,
          tls.keyFile,
          ...(tls.caFile ? [tls.caFile] : []),
          ...(tls.crlFile ? [tls.crlFile] : []),
        ]
      : []),
  ];
}

/** The mock-auth secret as key material; a random one (with a warning) when none is configured. */
function mockAuthSecret(config: PgwardConfig, log: Logger): Buffer {
  if (config.mockAuthSecret !== null) return createHash('sha256').update(config.mockAuthSecret).digest();
  log.warn(
    'mock_auth_secret is not set: unknown users get new SCRAM salts at every restart, so a client that watches across restarts can tell them from real users; set mock_auth_secret in pgward.yaml',
  );
  return randomBytes(32);
}

/**
 * The auth_query source for a configuration: the current one when neither auth_query nor the
 * upstream changed (its pool and cache carry over a reload), else a new one (the old one is closed).
 */
class AuthQueryHolder {
  #key = 'null';
  #source: AuthQuerySource | null = null;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  get source(): AuthQuerySource | null {
    return this.#source;
  }

  update(config: PgwardConfig): void {
    const key = JSON.stringify(config.authQuery === null ? null : [config.authQuery, config.upstream]);
    if (key === this.#key) return;
    const previous = this.#source;
    this.#source =
      config.authQuery === null ? null : createAuthQuerySource(config.authQuery, config.upstream, this.#log);
    this.#key = key;
    void previous?.close();
  }

  async close(): Promise<void> {
    await this.#source?.close();
    this.#source = null;
  }
}

/** Users file first, then auth_query (PgBouncer's order: auth_file, then auth_query). */
function credentialsFor(users: UserDirectory, authQuery: AuthQuerySource | null): CredentialSource {
  const file = usersFileCredentials(users);
  return authQuery ? chainCredentialSources(file, authQuery) : file;
}

function logHbaWarnings(log: Logger, hba: HbaTable): void {
  for (const warning of hba.warnings) log.warn({ file: hba.file }, warning);
}

/** Loads the rule and user files and starts the listeners. Throws ConfigError on a bad file. */
export async function startPgward(config: PgwardConfig, options: StartOptions = {}): Promise<Pgward> {
  const log = createLogger(config.log.level, options.logDestination);
  const pendingAuth = new PendingAuthGate(config.limits.maxPendingAuth);
  const metrics = new Metrics();
  metrics.pendingAuth = () => pendingAuth.pending;
  const live = loadLiveParts(config);
  const authQuery = new AuthQueryHolder(log);
  const validators = new TokenValidatorHolder(log);
  validators.update(config.tokenValidators);
  authQuery.update(config);
  const runtime: Runtime = {
    config,
    ...live,
    credentials: credentialsFor(live.users, authQuery.source),
    tokenValidators: validators.validators,
    mockAuthSecret: mockAuthSecret(config, log),
    cancelMap: new CancelMap(),
    failureDelays: new FailureDelays(config.limits.authFailureDelay),
    pendingAuth,
    metrics,
    log,
  };
  logHbaWarnings(log, runtime.hba);
  const listener = new PgListener(runtime);
  const httpListeners: HttpListener[] = [];
  // An object, not a variable: the reload closure replaces it.
  const watching: { current: FileWatch | null } = { current: null };

  const rearm = () => {
    watching.current?.close();
    watching.current = options.watch
      ? watchFiles(
          watchedFiles(runtime.config),
          (changed) => reload(`file changed: ${changed.join(', ')}`),
          (error) => log.warn({ err: error.message }, 'cannot watch configuration files; reload with SIGHUP'),
        )
      : null;
  };

  const reload = (reason: string): boolean => {
    const at = new Date();
    try {
      const next = runtime.config.file === null ? runtime.config : loadPgwardConfig(runtime.config.file);
      const parts = loadLiveParts(next);
      const current = runtime.config.listen;
      const listenChanged =
        JSON.stringify([next.listen.pg, next.listen.unixSocketDir, next.listen.http, next.listen.https]) !==
        JSON.stringify([current.pg, current.unixSocketDir, current.http, current.https]);
      if (listenChanged) log.warn('listen addresses change only on restart; the other changes are in force');
      runtime.config = { ...next, listen: { ...current, tls: next.listen.tls } };
      authQuery.update(next);
      validators.update(next.tokenValidators);
      runtime.tokenValidators = validators.validators;
      // A secret set or changed in pgward.yaml takes over; none keeps the one in use.
      if (next.mockAuthSecret !== null && next.mockAuthSecret !== runtime.config.mockAuthSecret)
        runtime.mockAuthSecret = mockAuthSecret(next, log);
      Object.assign(runtime, parts, { credentials: credentialsFor(parts.users, authQuery.source) });
      runtime.failureDelays.reconfigure(next.limits.authFailureDelay);
      runtime.pendingAuth.setMax(next.limits.maxPendingAuth);
      log.level = next.log.level;
      runtime.metrics.lastReload = { at, ok: true };
      log.info({ reason, rules: parts.hba.rules.length }, 'configuration reloaded');
      logHbaWarnings(log, parts.hba);
      rearm();
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      runtime.metrics.lastReload = { at, ok: false, error: message };
      log.error(
        { reason, error: message },
        'configuration reload failed; the previous configuration stays in force',
      );
      return false;
    }
  };

  try {
    const pgAddresses = await listener.listen(config.listen.pg);
    const firstPort = pgAddresses[0]?.port ?? 0;
    const unixSocket =
      config.listen.unixSocketDir === null
        ? null
        : await listener.listenUnix(config.listen.unixSocketDir, firstPort);
    const http = config.listen.http && (await startHttpServer(runtime, config.listen.http));
    if (http) httpListeners.push(http);
    const https = config.listen.https && (await startHttpsServer(runtime, config.listen.https));
    if (https) httpListeners.push(https);
    rearm();
    log.debug({ pg: pgAddresses.map(formatListenAddress), unixSocket }, 'started');
    return {
      runtime,
      pgAddresses,
      unixSocket,
      httpAddress: http ? http.address : null,
      httpsAddress: https ? https.address : null,
      log,
      reload,
      async close() {
        watching.current?.close();
        for (const server of httpListeners) server.close();
        await listener.close();
        await authQuery.close();
        validators.close();
      },
    };
  } catch (error) {
    watching.current?.close();
    await listener.close(0);
    await authQuery.close();
    validators.close();
    for (const server of httpListeners) server.close();
    throw error;
  }
}
