/**
 * Assembles a running pgward from a configuration: loads HBA and users, builds the TLS context, starts
 * the pg and HTTP listeners, and stops them again. Used by the CLI and by the tests.
 */

import type http from 'node:http';
import type { DestinationStream } from 'pino';
import type { ListenAddress } from './config/listen-address.ts';
import type { PgwardConfig } from './config/pgward-config.ts';
import { EMPTY_USER_DIRECTORY, loadUsersFile } from './credentials/users-file.ts';
import { loadHbaFile } from './hba/parse.ts';
import { startHttpServer } from './http/server.ts';
import { createLogger, type Logger } from './observe/logger.ts';
import { Metrics } from './observe/metrics.ts';
import { CancelMap } from './proxy/cancel-map.ts';
import { PgListener } from './proxy/listener.ts';
import type { Runtime } from './proxy/runtime.ts';
import { ServerTlsContext } from './tls/server-context.ts';

/** A started pgward. */
export interface Pgward {
  runtime: Runtime;
  /** The pg addresses bound (port 0 resolved). */
  pgAddresses: ListenAddress[];
  httpAddress: ListenAddress | null;
  log: Logger;
  /** Ends every session with 57P01 and stops listening. */
  close(): Promise<void>;
}

/** Options for tests: where log lines go. */
export interface StartOptions {
  logDestination?: DestinationStream;
}

/** Loads the rule and user files and starts the listeners. Throws ConfigError on a bad file. */
export async function startPgward(config: PgwardConfig, options: StartOptions = {}): Promise<Pgward> {
  const log = createLogger(config.log.level, options.logDestination);
  const hba = loadHbaFile(config.hbaFile);
  for (const warning of hba.warnings) log.warn({ file: config.hbaFile }, warning);
  const runtime: Runtime = {
    config,
    hba,
    users: config.usersFile === undefined ? EMPTY_USER_DIRECTORY : loadUsersFile(config.usersFile),
    tls: config.listen.tls === null ? null : new ServerTlsContext(config.listen.tls),
    cancelMap: new CancelMap(),
    metrics: new Metrics(),
    log,
  };
  const listener = new PgListener(runtime);
  let httpServer: http.Server | null = null;
  try {
    const pgAddresses = await listener.listen(config.listen.pg);
    let httpAddress: ListenAddress | null = null;
    if (config.listen.http) {
      const started = await startHttpServer(runtime, config.listen.http);
      httpServer = started.server;
      httpAddress = started.address;
    }
    return {
      runtime,
      pgAddresses,
      httpAddress,
      log,
      async close() {
        httpServer?.closeAllConnections();
        httpServer?.close();
        await listener.close();
      },
    };
  } catch (error) {
    await listener.close(0);
    httpServer?.close();
    throw error;
  }
}
