/**
 * `npm run bench`: pgbench select-only at -c 1, 8 and 32 against direct PostgreSQL, pgward and
 * PgBouncer (session mode) side by side in one run, printing steady-state TPS, each ratio to direct and
 * the CPU each proxy spends per transaction; then RSS per idle client for pgward and PgBouncer.
 * Not a test: it measures and prints.
 *
 * Each round runs every column once per client count, in a rotating order so that drift on the machine
 * does not favour one column; the table shows medians over the rounds.
 *
 * Environment: BENCH_SECONDS (per pgbench run, default 10), BENCH_WARMUP (seconds dropped from each run,
 * default 3), BENCH_ROUNDS (default 3), BENCH_IDLE_CLIENTS (default 1000).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.ts';
import { findFreePort } from '../src/embedded/free-port.ts';
import { type IdleMemory, measureIdleMemory } from './idle-memory.ts';
import { median, PGBENCH, type RunResult, run, runPgbench } from './pgbench.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IDLE_CLIENTS = Number(process.env.BENCH_IDLE_CLIENTS ?? 1000);
const CLIENT_COUNTS = [1, 8, 32];
const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));
const PGWARD_BIN = fileURLToPath(new URL('../bin/pgward', import.meta.url));
const PASSWORD = 'bench-password';
/** RSS per idle client the issue sets as pgward's target. */
const IDLE_TARGET_BYTES = 16 * 1024;

interface Column {
  name: 'direct' | 'pgward' | 'PgBouncer';
  port: number;
  pid?: number;
}

async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** pgward in its own process, started the way an operator starts it (bin/pgward with its flags). */
async function startPgwardProcess(
  work: string,
  upstreamPort: number,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await findFreePort();
  await writeFile(
    path.join(work, 'hba.yaml'),
    'rules:\n  - { type: host, address: 127.0.0.1/32, database: all, user: all, method: trust }\n',
  );
  await writeFile(
    path.join(work, 'pgward.yaml'),
    [
      `listen: { pg: "127.0.0.1:${port}" }`,
      `upstream: { host: 127.0.0.1, port: ${upstreamPort}, tls: { mode: disable }, login: { password: ${PASSWORD} } }`,
      `limits: { max_clients: ${2 * IDLE_CLIENTS + 100} }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const child = spawn(PGWARD_BIN, ['start', '--config', path.join(work, 'pgward.yaml')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForPort(port);
  return { child, port };
}

/** PgBouncer 1.18 in session mode, trust on the client side like pgward's rule; null if it cannot start. */
async function startPgBouncer(
  work: string,
  upstreamPort: number,
): Promise<{ child: ChildProcess; port: number } | null> {
  if (!PGBOUNCER) {
    console.log('PgBouncer not found (apt-get install -y pgbouncer); its column is skipped.');
    return null;
  }
  const port = await findFreePort();
  const limit = 2 * IDLE_CLIENTS + 100;
  const ini = path.join(work, 'pgbouncer.ini');
  await writeFile(path.join(work, 'userlist.txt'), `"postgres" "${PASSWORD}"\n`);
  await writeFile(
    ini,
    [
      '[databases]',
      `postgres = host=127.0.0.1 port=${upstreamPort} dbname=postgres`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(work, 'userlist.txt')}`,
      'pool_mode = session',
      `max_client_conn = ${limit}`,
      `default_pool_size = ${limit}`,
      `max_db_connections = ${limit}`,
      'logfile =',
      'log_connections = 0',
      'log_disconnections = 0',
      `pidfile = ${path.join(work, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  // PgBouncer refuses to run as root: run it as the owner of the data directory (embedded-postgres's user).
  const owner = await stat(path.join(work, 'data'));
  for (const file of ['pgbouncer.ini', 'userlist.txt'])
    await chown(path.join(work, file), owner.uid, owner.gid);
  await chown(work, owner.uid, 0);
  const asUser = process.getuid?.() === 0 ? ['-u', 'postgres'] : [];
  const child = spawn(PGBOUNCER, [...asUser, ini], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitForPort(port, 5000);
    return { child, port };
  } catch {
    console.log('PgBouncer could not start; its column is skipped.');
    await stop(child);
    return null;
  }
}

function formatTps(result: number, direct: number): string {
  return `${result.toFixed(0).padStart(6)} (${(result / direct).toFixed(3)})`;
}

function formatCpu(results: RunResult[]): string {
  return `${median(results.map((r) => r.userMicros)).toFixed(1)} + ${median(results.map((r) => r.systemMicros)).toFixed(1)}`;
}

/** Runs every column ROUNDS times at one client count and prints the medians. */
async function benchClientCount(columns: Column[], clients: number): Promise<boolean> {
  const results = new Map<Column['name'], RunResult[]>(columns.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < columns.length; i++) {
      const column = columns[(i + round) % columns.length] as Column;
      const result = await runPgbench({
        port: column.port,
        clients,
        seconds: SECONDS,
        warmupSeconds: WARMUP,
        password: PASSWORD,
        ...(column.pid === undefined ? {} : { watchPid: column.pid }),
      });
      results.get(column.name)?.push(result);
    }
  }
  const tps = (name: Column['name']) => median((results.get(name) ?? []).map((r) => r.tps));
  const direct = tps('direct');
  const ward = tps('pgward');
  const bouncer = results.has('PgBouncer') ? tps('PgBouncer') : null;
  const ok = bouncer === null || ward / direct >= bouncer / direct;
  console.log(
    [
      String(clients).padStart(7),
      direct.toFixed(0).padStart(10),
      formatTps(ward, direct).padStart(16),
      (bouncer === null ? 'skipped' : formatTps(bouncer, direct)).padStart(16),
      (ok ? 'yes' : 'NO').padStart(6),
      formatCpu(results.get('pgward') ?? []).padStart(14),
      (bouncer === null ? '' : formatCpu(results.get('PgBouncer') ?? [])).padStart(14),
    ].join(' | '),
  );
  return ok;
}

function formatIdle(memory: IdleMemory): string {
  return `first ${IDLE_CLIENTS}: ${memory.first.toFixed(0)} bytes/client, next ${IDLE_CLIENTS}: ${memory.next.toFixed(0)} bytes/client`;
}

async function main(): Promise<void> {
  if (!PGBENCH) {
    console.log(
      'pgbench not found: install it with `apt-get install -y postgresql-15` (Debian), then run again.',
    );
    process.exit(1);
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'pgward-bench-'));
  await chmod(work, 0o755);
  const upstream = await startEmbeddedPostgres({
    dataDir: path.join(work, 'data'),
    password: PASSWORD,
    log: pino({ level: 'warn' }),
    maxConnections: 2 * IDLE_CLIENTS + 200,
    settings: { shared_buffers: '128MB' },
  });
  const children: ChildProcess[] = [];
  try {
    await run(
      PGBENCH,
      ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(upstream.port), '-U', 'postgres', 'postgres'],
      {
        PGPASSWORD: PASSWORD,
      },
    );
    const pgward = await startPgwardProcess(work, upstream.port);
    children.push(pgward.child);
    const bouncer = await startPgBouncer(work, upstream.port);
    if (bouncer) children.push(bouncer.child);
    const columns: Column[] = [
      { name: 'direct', port: upstream.port },
      { name: 'pgward', port: pgward.port, ...(pgward.child.pid ? { pid: pgward.child.pid } : {}) },
      ...(bouncer
        ? [
            {
              name: 'PgBouncer' as const,
              port: bouncer.port,
              ...(bouncer.child.pid ? { pid: bouncer.child.pid } : {}),
            },
          ]
        : []),
    ];

    console.log(
      `\npgbench -S (select-only), scale 1, ${os.cpus().length} cores: median of ${ROUNDS} rounds of ${SECONDS} s, ` +
        `steady-state TPS (first ${WARMUP} s of each run dropped)`,
    );
    console.log(
      'clients | direct TPS |  pgward (ratio) | PgBouncer (ratio) | ≥ PgB? | pgward µs/tx | PgB µs/tx (user + sys)',
    );
    const verdicts: boolean[] = [];
    for (const clients of CLIENT_COUNTS) verdicts.push(await benchClientCount(columns, clients));

    console.log(`\nRSS per idle client (${IDLE_CLIENTS} idle clients, then ${IDLE_CLIENTS} more):`);
    const ward = await measureIdleMemory(pgward.child.pid ?? 0, pgward.port, IDLE_CLIENTS, PASSWORD);
    console.log(`  pgward:    ${formatIdle(ward)}`);
    if (bouncer?.child.pid) {
      console.log(
        `  PgBouncer: ${formatIdle(await measureIdleMemory(bouncer.child.pid, bouncer.port, IDLE_CLIENTS, PASSWORD))}`,
      );
    }
    console.log(
      `\nTPS target (pgward ratio ≥ PgBouncer ratio at every client count): ${verdicts.every(Boolean) ? 'met' : 'NOT met'}`,
    );
    console.log(
      `Memory target (≤ ${IDLE_TARGET_BYTES} bytes per idle client, first ${IDLE_CLIENTS}): ${ward.first <= IDLE_TARGET_BYTES ? 'met' : 'NOT met'}`,
    );
  } finally {
    for (const child of children) await stop(child);
    await upstream.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
