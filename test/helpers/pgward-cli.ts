/**
 * bin/pgward as a user runs it: executed directly, so its shebang picks node and the V8 flags, from a
 * shell that drops tap's loaders (tap adds them to node children through NODE_OPTIONS).
 */

import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The executable. */
export const PGWARD_BIN = fileURLToPath(new URL('../../bin/pgward', import.meta.url));

/** What a finished command printed. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `pgward <args>` and returns the running process. */
export function spawnPgward(
  args: readonly string[],
  cwd?: string,
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn('/bin/sh', ['-c', 'unset NODE_OPTIONS; exec "$@"', 'sh', PGWARD_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
}

/** Runs `pgward <args>` to its end. */
export function runPgward(args: readonly string[], cwd?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawnPgward(args, cwd);
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
