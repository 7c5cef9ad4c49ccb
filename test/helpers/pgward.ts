/**
 * Starts pgward for a test: writes pgward.yaml, hba.yaml, users.yaml and a per-run TLS certificate
 * into a temp dir, reads them through the real config loaders, and listens on port 0.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { createScramVerifier, formatScramVerifier } from '../../src/auth/scram/verifier.ts';
import { loadPgwardConfig } from '../../src/config/pgward-config.ts';
import { type Pgward, startPgward } from '../../src/pgward.ts';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed.ts';
import { LogCapture } from './log-capture.ts';

/** Where pgward should relay to. */
export interface UpstreamTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** Options of a test pgward. */
export interface TestPgwardOptions {
  upstream: UpstreamTarget;
  /** hba.yaml text. */
  hba: string;
  /** Users and their passwords, stored as SCRAM verifiers in users.yaml. */
  users?: Record<string, string>;
  /** Serve TLS (self-signed certificate generated for this run). Default true. */
  tls?: boolean;
  /** Extra YAML lines under `limits:` (values written as given: numbers or flow maps). */
  limits?: Record<string, number | string>;
  /** `upstream.login` override (default: mode same with the upstream superuser's password). */
  login?: string;
  /** Extra YAML appended under `upstream:` (e.g. `connect_timeout_ms: 500`). */
  upstreamExtra?: string;
  http?: boolean;
  /** Also serve HTTP over TLS (`listen.https`, with the `tls` certificate). */
  https?: boolean;
  /** YAML for `upstream.tls` (default `{ mode: disable }`). */
  upstreamTls?: string;
  /** Extra files to write next to pgward.yaml (name → content). */
  files?: Record<string, string>;
  /** pg listen addresses (default one: 127.0.0.1:0). */
  listen?: string[];
  /** Also listen on a Unix socket in the config dir. */
  unixSocket?: boolean;
  /** Users' groups, written into users.yaml. */
  groups?: Record<string, string[]>;
  /** Reload when a configuration file changes. */
  watch?: boolean;
  /** users.yaml text, instead of the one built from `users` and `groups`. */
  usersFile?: string;
  /** Extra YAML lines under `listen.tls:` (e.g. `ca: ca.pem`), indented by the caller's 4 spaces. */
  tlsExtra?: string;
  /** Top-level YAML appended to pgward.yaml (e.g. `auth_query:` or `mock_auth_secret:`). */
  extraConfig?: string;
}

/** A running test pgward. */
export interface TestPgward {
  host: string;
  port: number;
  httpPort: number | null;
  httpsPort: number | null;
  dir: string;
  /** The server certificate (self-signed: also the CA to verify it). */
  certFile: string;
  /** Every pg address bound, in the order of `listen`. */
  addresses: { host: string; port: number }[];
  /** The Unix socket path, when asked for. */
  unixSocket: string | null;
  logs: LogCapture;
  pgward: Pgward;
  close(): Promise<void>;
}

/** users.yaml text: SCRAM verifiers for the passwords, and group memberships. */
export async function usersYaml(
  passwords: Record<string, string>,
  groups: Record<string, string[]> = {},
): Promise<string> {
  const names = [...new Set([...Object.keys(passwords), ...Object.keys(groups)])];
  const entries = await Promise.all(
    names.map(async (name) => {
      const lines = [`  ${JSON.stringify(name)}:`];
      const password = passwords[name];
      if (password !== undefined)
        lines.push(`    scram: "${formatScramVerifier(await createScramVerifier(password))}"`);
      const memberOf = groups[name];
      if (memberOf !== undefined) lines.push(`    groups: ${JSON.stringify(memberOf)}`);
      if (lines.length === 1) lines.push('    {}');
      return lines.join('\n');
    }),
  );
  return entries.length === 0 ? 'users: {}\n' : `users:\n${entries.join('\n')}\n`;
}

/** Writes the files and starts pgward; closed at teardown. */
export async function startTestPgward(t: Test, options: TestPgwardOptions): Promise<TestPgward> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-cfg-'));
  const certFile = path.join(dir, 'server.crt');
  const pair = await generateSelfSignedCertificate('localhost');
  await writeFile(certFile, pair.certPem);
  await writeFile(path.join(dir, 'server.key'), pair.keyPem, { mode: 0o600 });
  await writeFile(path.join(dir, 'hba.yaml'), options.hba);
  for (const [name, content] of Object.entries(options.files ?? {}))
    await writeFile(path.join(dir, name), content);
  await writeFile(
    path.join(dir, 'users.yaml'),
    options.usersFile ?? (await usersYaml(options.users ?? {}, options.groups ?? {})),
  );
  const tls = options.tls ?? true;
  const limits = Object.entries(options.limits ?? {}).map(([k, v]) => `  ${k}: ${v}`);
  const config = [
    'listen:',
    `  pg: ${JSON.stringify(options.listen ?? ['127.0.0.1:0'])}`,
    options.unixSocket ? `  unix_socket_dir: ${JSON.stringify(dir)}` : '',
    options.http ? '  http: 127.0.0.1:0' : '',
    options.https ? '  https: 127.0.0.1:0' : '',
    tls
      ? `  tls:\n    cert: server.crt\n    key: server.key${options.tlsExtra ? `\n${options.tlsExtra}` : ''}`
      : '',
    'upstream:',
    `  host: ${options.upstream.host}`,
    `  port: ${options.upstream.port}`,
    `  tls: ${options.upstreamTls ?? '{ mode: disable }'}`,
    `  login: ${options.login ?? `{ mode: same, password: ${JSON.stringify(options.upstream.password)} }`}`,
    options.upstreamExtra ? `  ${options.upstreamExtra}` : '',
    'hba: hba.yaml',
    'users: users.yaml',
    limits.length > 0 ? `limits:\n${limits.join('\n')}` : '',
    'log: { level: debug }',
    options.extraConfig ?? '',
    '',
  ]
    .filter((line) => line !== '')
    .map((line) => `${line}\n`)
    .join('');
  await writeFile(path.join(dir, 'pgward.yaml'), config);
  const logs = new LogCapture();
  const pgward = await startPgward(loadPgwardConfig(path.join(dir, 'pgward.yaml')), {
    logDestination: logs,
    watch: options.watch ?? false,
  });
  const address = pgward.pgAddresses[0];
  if (!address) throw new Error('pgward bound no address');
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await pgward.close();
  };
  t.teardown(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    host: address.host,
    port: address.port,
    httpPort: pgward.httpAddress?.port ?? null,
    httpsPort: pgward.httpsAddress?.port ?? null,
    dir,
    certFile,
    addresses: pgward.pgAddresses,
    unixSocket: pgward.unixSocket,
    logs,
    pgward,
    close,
  };
}

/** Trust-everyone rules for tests that are about the relay, not authentication. */
export const TRUST_ALL = `rules:
  - { type: host, address: all, database: all, user: all, method: trust }
`;

/** Cleartext password over TLS (rule `tls`) and, explicitly allowed, without it (rule `plain`). */
export const PASSWORD_TLS_AND_PLAIN = `rules:
  - { name: tls, type: hostssl, address: 127.0.0.1/32, database: all, user: all, method: password }
  - { name: plain, type: host, address: 127.0.0.1/32, database: all, user: all, method: password, allow_cleartext: true }
`;
