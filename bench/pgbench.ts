/**
 * One pgbench select-only run against a port, reduced to its steady-state TPS, plus the CPU a watched
 * process (pgward or PgBouncer) spent per transaction meanwhile.
 *
 * Steady state, not pgbench's own figure: PgBouncer keeps its server connections (warm backends) from
 * one run to the next, while direct connections and pgward start fresh backends every run, and on two
 * cores 32 fresh backends need about two seconds to warm up (measured: 2 000 tps in the first second,
 * 23 000 from the third). Averaging only the progress lines after `warmupSeconds` compares the relays,
 * not the age of the backends behind them.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** pgbench from Debian's postgresql client packages. */
export const PGBENCH = ['/usr/lib/postgresql/15/bin/pgbench', '/usr/bin/pgbench'].find((p) => existsSync(p));

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** What one run measured. */
export interface RunResult {
  /** Mean TPS over the progress lines after the warm-up. */
  tps: number;
  /** CPU of the watched process per transaction, in microseconds (whole run, warm-up included). */
  userMicros: number;
  systemMicros: number;
}

/** How to run pgbench. */
export interface RunOptions {
  port: number;
  clients: number;
  seconds: number;
  warmupSeconds: number;
  password: string;
  /** A process whose CPU time is charged per transaction. */
  watchPid?: number;
}

/** Runs a command and resolves with its stdout and stderr together (pgbench prints progress on stderr). */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || error.message}`));
        else resolve(stdout + stderr);
      },
    );
  });
}

async function cpuTicks(pid: number): Promise<{ user: number; system: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

/** Mean of the per-second TPS that pgbench -P 1 printed after the warm-up. */
export function steadyStateTps(output: string, warmupSeconds: number): number {
  const rates: number[] = [];
  for (const match of output.matchAll(/^progress: ([\d.]+) s, ([\d.]+) tps/gm)) {
    if (Number(match[1]) > warmupSeconds) rates.push(Number(match[2]));
  }
  if (rates.length === 0) throw new Error(`no progress lines after ${warmupSeconds} s:\n${output}`);
  return rates.reduce((sum, rate) => sum + rate, 0) / rates.length;
}

/** One pgbench -S run. */
export async function runPgbench(options: RunOptions): Promise<RunResult> {
  if (!PGBENCH) throw new Error('pgbench not found');
  const before = options.watchPid === undefined ? null : await cpuTicks(options.watchPid);
  const output = await run(
    PGBENCH,
    [
      ...['-h', '127.0.0.1', '-p', String(options.port), '-U', 'postgres', '-n', '-S'],
      ...['-c', String(options.clients), '-j', String(Math.min(options.clients, 2))],
      ...['-T', String(options.seconds), '-P', '1', 'postgres'],
    ],
    { PGPASSWORD: options.password },
  );
  const after = options.watchPid === undefined ? null : await cpuTicks(options.watchPid);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(output)?.[1] ?? 0);
  const perTransaction = (ticks: number) =>
    transactions > 0 ? (ticks / TICKS_PER_SECOND / transactions) * 1e6 : Number.NaN;
  return {
    tps: steadyStateTps(output, options.warmupSeconds),
    userMicros: before && after ? perTransaction(after.user - before.user) : Number.NaN,
    systemMicros: before && after ? perTransaction(after.system - before.system) : Number.NaN,
  };
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}
