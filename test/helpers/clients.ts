/**
 * Real clients for e2e tests: psql and psycopg 3 as child processes, with deadlines.
 */

import { execFile, spawn } from 'node:child_process';
import type pg from 'pg';

/** What a client process printed and how it ended. */
export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** psql (Debian postgresql-client): `-X` so no ~/.psqlrc, ON_ERROR_STOP, no password prompt. */
export function psql(
  conninfo: string,
  args: string[],
  options: { password?: string; input?: string } = {},
): Promise<ProcessResult> {
  return run(
    'psql',
    ['-X', '-w', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, ...args],
    options.password,
    options.input,
  );
}

/** The Debian python3 (with python3-psycopg), not the pyenv one on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Runs a Python script with psycopg 3 importable. */
export function python(script: string, env: Record<string, string> = {}): Promise<ProcessResult> {
  return run(SYSTEM_PYTHON, ['-c', script], undefined, undefined, env);
}

function run(
  command: string,
  args: string[],
  password?: string,
  input?: string,
  extraEnv: Record<string, string> = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '10', ...extraEnv };
    delete env.PGPASSWORD;
    if (password !== undefined) env.PGPASSWORD = password;
    const child = execFile(
      command,
      args,
      { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Starts psql and returns it running (for cancel by SIGINT). */
export function spawnPsql(conninfo: string, args: string[], password: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' };
  const child = spawn('psql', ['-X', '-w', '-d', conninfo, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<ProcessResult>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done, output: () => stdout };
}

/** curl (Debian curl): `-sS` so errors still print, a deadline, and the HTTP status on the last line. */
export function curl(args: string[]): Promise<ProcessResult> {
  return run('curl', ['-sS', '--max-time', '30', '-w', '\n%{http_code}', ...args]);
}

/**
 * Connects a `pg` client, runs `sql` and ends the client; resolves with the first row's values joined
 * by `/`, or `SQLSTATE: message` when the login or the statement fails.
 */
export async function firstRowOrError(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.connect();
    const result = await client.query(sql);
    return Object.values(result.rows[0] ?? {})
      .map(String)
      .join('/');
  } catch (error) {
    const e = error as { code?: string; message: string };
    return `${e.code}: ${e.message}`;
  } finally {
    await client.end().catch(() => {});
  }
}
