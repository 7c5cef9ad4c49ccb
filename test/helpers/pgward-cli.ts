/**
 * bin/pgward as a user runs it: executed directly, so its shebang picks node and the V8 flags, from a
 * shell that drops tap's loaders (tap adds them to node children through NODE_OPTIONS).
 */

import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The executable. */
export const PGWARD_BIN = fileURLToPath(new URL('../../bin/pgward', import.meta.url));

/** What a finished command printed. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** What runPgward can add to the command line. */
export interface RunPgwardOptions {
  /** Text piped to the command's stdin, which then ends; without it, stdin is /dev/null. */
  input?: string;
}

/** The arguments of /bin/sh that run `pgward <args>` without NODE_OPTIONS. */
function shellArgs(args: readonly string[]): string[] {
  return ['-c', 'unset NODE_OPTIONS; exec "$@"', 'sh', PGWARD_BIN, ...args];
}

/** Starts `pgward <args>` and returns the running process. */
export function spawnPgward(
  args: readonly string[],
  cwd?: string,
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn('/bin/sh', shellArgs(args), {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
}

/** Starts `pgward <args>` with `input` written to its stdin, which is then closed. */
function spawnPgwardWithInput(
  args: readonly string[],
  cwd: string | undefined,
  input: string,
): ChildProcessByStdio<Writable, Readable, Readable> {
  const child = spawn('/bin/sh', shellArgs(args), {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  // A command that exits before reading stdin (a usage error) breaks the pipe; its exit status says why.
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  return child;
}

/** Runs `pgward <args>` to its end. */
export function runPgward(
  args: readonly string[],
  cwd?: string,
  options: RunPgwardOptions = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child =
      options.input === undefined ? spawnPgward(args, cwd) : spawnPgwardWithInput(args, cwd, options.input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
