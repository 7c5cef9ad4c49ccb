/**
 * `npm run bench`: pgbench select-only at -c 1, 8, 32 against direct PostgreSQL, pgward and PgBouncer
 * (session mode) in one run, printing TPS and each ratio to direct; then pgward's (and PgBouncer's)
 * RSS per idle client with 1000 clients connected. Not a test: it measures and prints.
 *
 * Environment: BENCH_SECONDS (per pgbench run, default 10), BENCH_IDLE_CLIENTS (default 1000).
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.ts';
import { findFreePort } from '../src/embedded/free-port.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const IDLE_CLIENTS = Number(process.env.BENCH_IDLE_CLIENTS ?? 1000);
const CLIENT_COUNTS = [1, 8, 32];
const PGBENCH = ['/usr/lib/postgresql/15/bin/pgbench', '/usr/bin/pgbench'].find((p) => existsSync(p));
const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || error.message}`));
        else resolve(stdout);
      },
    );
  });
}

async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const net = await import('node:net');
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

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

async function pgbenchTps(port: number, clients: number, password: string): Promise<number> {
  if (!PGBENCH) throw new Error('no pgbench');
  const out = await run(
    PGBENCH,
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-n',
      '-S',
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, 2)),
      '-T',
      String(SECONDS),
      'postgres',
    ],
    { PGPASSWORD: password },
  );
  const tps =
    /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(out);
  if (!tps?.[1]) throw new Error(`no tps in pgbench output:\n${out}`);
  return Number(tps[1]);
}

async function openIdleClients(port: number, count: number, password: string): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, async () => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        password,
        database: 'postgres',
      });
      client.on('error', () => {});
      await client.connect();
      return client;
    });
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

async function idleBytesPerClient(pid: number, port: number, password: string): Promise<number> {
  const warm = await openIdleClients(port, 20, password);
  await Promise.all(warm.map((c) => c.end()));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const before = await rssOf(pid);
  const clients = await openIdleClients(port, IDLE_CLIENTS, password);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const after = await rssOf(pid);
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  return (after - before) / IDLE_CLIENTS;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
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
  const password = 'bench-password';
  const log = pino({ level: 'warn' });
  const upstream = await startEmbeddedPostgres({
    dataDir: path.join(work, 'data'),
    password,
    log,
    maxConnections: IDLE_CLIENTS + 200,
    settings: { shared_buffers: '128MB' },
  });
  const children: ChildProcess[] = [];
  try {
    await run(
      PGBENCH,
      ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(upstream.port), '-U', 'postgres', 'postgres'],
      {
        PGPASSWORD: password,
      },
    );

    // pgward, in its own process as it runs in production.
    const pgwardPort = await findFreePort();
    await writeFile(
      path.join(work, 'hba.yaml'),
      'rules:\n  - { type: host, address: 127.0.0.1/32, database: all, user: all, method: trust }\n',
    );
    await writeFile(
      path.join(work, 'pgward.yaml'),
      `listen: { pg: "127.0.0.1:${pgwardPort}" }\nupstream:\n  host: 127.0.0.1\n  port: ${upstream.port}\n  tls: { mode: disable }\n  login: { password: ${password} }\nlimits: { max_clients: ${IDLE_CLIENTS + 100} }\nlog: { level: warn }\n`,
    );
    const pgward = spawn(
      process.execPath,
      [path.join(ROOT, 'bin/pgward'), 'start', '--config', path.join(work, 'pgward.yaml')],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    children.push(pgward);
    await waitForPort(pgwardPort);

    // PgBouncer 1.18 in session mode, trust on the client side like pgward's rule above.
    let bouncerPort: number | null = null;
    let bouncer: ChildProcess | null = null;
    if (PGBOUNCER) {
      bouncerPort = await findFreePort();
      const ini = path.join(work, 'pgbouncer.ini');
      await writeFile(path.join(work, 'userlist.txt'), `"postgres" "${password}"\n`);
      await writeFile(
        ini,
        [
          '[databases]',
          `postgres = host=127.0.0.1 port=${upstream.port} dbname=postgres`,
          '[pgbouncer]',
          'listen_addr = 127.0.0.1',
          `listen_port = ${bouncerPort}`,
          'unix_socket_dir =',
          'auth_type = trust',
          `auth_file = ${path.join(work, 'userlist.txt')}`,
          'pool_mode = session',
          `max_client_conn = ${IDLE_CLIENTS + 100}`,
          `default_pool_size = ${IDLE_CLIENTS + 100}`,
          `max_db_connections = ${IDLE_CLIENTS + 100}`,
          'logfile =',
          'log_connections = 0',
          'log_disconnections = 0',
          `pidfile = ${path.join(work, 'pgbouncer.pid')}`,
          '',
        ].join('\n'),
      );
      const postgresUser = process.getuid?.() === 0 ? ['-u', 'postgres'] : [];
      for (const file of ['pgbouncer.ini', 'userlist.txt']) {
        const owner = await import('node:fs/promises').then((fs) => fs.stat(path.join(work, 'data')));
        await chown(path.join(work, file), owner.uid, owner.gid);
      }
      await chown(
        work,
        (await import('node:fs/promises').then((fs) => fs.stat(path.join(work, 'data')))).uid,
        0,
      );
      bouncer = spawn(PGBOUNCER, [...postgresUser, ini], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(bouncer);
      try {
        await waitForPort(bouncerPort, 5000);
      } catch {
        console.log('PgBouncer could not start; its column is skipped.');
        bouncerPort = null;
      }
    } else {
      console.log('PgBouncer not found (apt-get install -y pgbouncer); its column is skipped.');
    }

    console.log(`\npgbench -S (select-only), ${SECONDS} s per run, scale 1, ${os.cpus().length} cores`);
    console.log('clients | direct TPS | pgward TPS (ratio) | PgBouncer TPS (ratio) | pgward ≥ PgBouncer');
    const verdicts: boolean[] = [];
    for (const clients of CLIENT_COUNTS) {
      const direct = await pgbenchTps(upstream.port, clients, password);
      const ward = await pgbenchTps(pgwardPort, clients, password);
      const bounced = bouncerPort === null ? null : await pgbenchTps(bouncerPort, clients, password);
      const wardRatio = ward / direct;
      const bounceRatio = bounced === null ? null : bounced / direct;
      const ok = bounceRatio === null || wardRatio >= bounceRatio;
      verdicts.push(ok);
      console.log(
        `${String(clients).padStart(7)} | ${direct.toFixed(0).padStart(10)} | ${ward.toFixed(0).padStart(10)} (${wardRatio.toFixed(3)}) | ${
          bounced === null
            ? '      skipped'
            : `${bounced.toFixed(0).padStart(10)} (${(bounceRatio ?? 0).toFixed(3)})`
        } | ${ok ? 'yes' : 'NO'}`,
      );
    }

    const pgwardPid = pgward.pid ?? 0;
    const perClient = await idleBytesPerClient(pgwardPid, pgwardPort, password);
    console.log(`\nidle clients: ${IDLE_CLIENTS}`);
    console.log(
      `pgward RSS per idle client: ${perClient.toFixed(0)} bytes (target ≤ 16384: ${perClient <= 16384 ? 'met' : 'NOT met'})`,
    );
    if (bouncer?.pid && bouncerPort !== null) {
      const bouncerPerClient = await idleBytesPerClient(bouncer.pid, bouncerPort, password);
      console.log(`PgBouncer RSS per idle client: ${bouncerPerClient.toFixed(0)} bytes`);
    }
    console.log(
      `\nTPS target (pgward ratio ≥ PgBouncer ratio at every client count): ${verdicts.every(Boolean) ? 'met' : 'NOT met'}`,
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
