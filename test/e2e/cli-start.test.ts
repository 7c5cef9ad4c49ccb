import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { psql, spawnPsql } from '../helpers/clients.ts';
import { spawnPgward } from '../helpers/pgward-cli.ts';

const root = await mkdtemp(path.join(os.tmpdir(), 'pgward-state-'));
await chmod(root, 0o755);
const stateDir = path.join(root, '.pgward');
t.teardown(() => rm(path.dirname(stateDir), { recursive: true, force: true }));

interface Started {
  stop(signal: NodeJS.Signals): Promise<number | null>;
  banner: string;
  output: () => string;
}

/** Runs `pgward start`; by default with no configuration, as `npm start` does, on free ports. */
async function start(
  args = ['start', '--state-dir', stateDir, '--port', '0', '--http-port', '0'],
  ready = 'Stop with Ctrl-C.',
): Promise<Started> {
  const child = spawnPgward(args);
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!output.includes(ready)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await exited;
      throw new Error(`pgward start did not come up:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    banner: output,
    output: () => output,
    async stop(signal) {
      child.kill(signal);
      return exited;
    },
  };
}

function field(banner: string, pattern: RegExp): string {
  const match = pattern.exec(banner);
  if (!match?.[1]) throw new Error(`no ${pattern} in banner:\n${banner}`);
  return match[1];
}

const first = await start();
const conninfo = field(first.banner, /psql "([^"]+)"/);
const password = field(first.banner, /Password \(shown this once[^\n]*\n\s+(\S+)/);
const health = field(first.banner, /Health: (http:\S+)/);

t.test('the banner prints a psql command that works with the printed password, over TLS', async (t) => {
  t.match(conninfo, /^host=127\.0\.0\.1 port=\d+ user=postgres dbname=postgres sslmode=require$/);
  const result = await psql(
    conninfo,
    ['-At', '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()', '-c', 'select 7*6'],
    {
      password,
    },
  );
  t.equal(result.stdout.trim().split('\n').at(-1), '42', result.stderr);
});

t.test('the password is stored only as a SCRAM verifier in the state dir', async (t) => {
  const users = await readFile(path.join(stateDir, 'users.yaml'), 'utf8');
  t.match(users, /scram: "SCRAM-SHA-256\$4096:/);
  t.notMatch(users, password);
});

t.test('the default rules are not "trust everyone"', async (t) => {
  const noPassword = await psql(conninfo, ['-c', 'select 1']);
  t.not(noPassword.code, 0);
  t.match(noPassword.stderr, /password/);
  const wrong = await psql(conninfo, ['-c', 'select 1'], { password: 'guess' });
  t.match(wrong.stderr, 'password authentication failed for user "postgres"');
  const clear = await psql(conninfo.replace('sslmode=require', 'sslmode=disable'), ['-c', 'select 1'], {
    password,
  });
  t.match(
    clear.stderr,
    'no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "postgres", no encryption',
  );
});

t.test('the HTTP listener answers /healthz', async (t) => {
  const response = await fetch(`${health}`);
  t.equal(response.status, 200);
  t.match(await response.json(), { status: 'ok' });
});

t.test(
  'SIGTERM ends sessions with 57P01, stops the embedded server, and a restart keeps the state',
  async (t) => {
    const session = spawnPsql(conninfo, ['-c', 'select pg_sleep(30)'], password);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const upstreamPort = Number(
      field(
        await readFile(path.join(stateDir, 'pgdata', 'postmaster.pid'), 'utf8'),
        /^\d+\n[^\n]+\n\d+\n(\d+)\n/,
      ),
    );
    const code = await first.stop('SIGTERM');
    t.equal(code, 0, 'pgward exits cleanly');
    const result = await session.done;
    t.match(result.stderr, 'FATAL:  terminating connection due to administrator command');
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: upstreamPort });
      socket.on('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.on('error', () => resolve(true));
    });
    t.ok(refused, `the embedded PostgreSQL on port ${upstreamPort} is stopped`);

    const second = await start();
    t.match(second.banner, /Password: printed when .* was created/);
    const again = field(second.banner, /psql "([^"]+)"/);
    const result2 = await psql(again, ['-At', '-c', 'select 1'], { password });
    t.equal(result2.stdout.trim(), '1', 'the same password works after a restart');
    t.equal(await second.stop('SIGINT'), 0, 'Ctrl-C stops it too');
  },
);

t.test('pgward start --config runs against an external PostgreSQL', async (t) => {
  const upstreamPassword = (await readFile(path.join(stateDir, 'upstream-password'), 'utf8')).trim();
  const running = await start();
  const pid = await readFile(path.join(stateDir, 'pgdata', 'postmaster.pid'), 'utf8');
  const upstreamPort = Number(field(pid, /^\d+\n[^\n]+\n\d+\n(\d+)\n/));
  const dir = path.join(root, 'external');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'hba.yaml'),
    'rules:\n  - { type: host, address: 127.0.0.1/32, database: all, user: all, method: trust }\n',
  );
  await writeFile(
    path.join(dir, 'pgward.yaml'),
    `listen: { pg: "127.0.0.1:0" }\nupstream:\n  host: 127.0.0.1\n  port: ${upstreamPort}\n  tls: { mode: disable }\n  login: { password: "file:upstream.secret" }\n`,
  );
  await writeFile(path.join(dir, 'upstream.secret'), `${upstreamPassword}\n`);
  const external = await start(['start', '--config', path.join(dir, 'pgward.yaml')], '"listening (pg)"');
  const port = Number(field(external.output(), /"address":"127\.0\.0\.1:(\d+)","msg":"listening \(pg\)"/));
  const result = await psql(`host=127.0.0.1 port=${port} user=postgres dbname=postgres`, [
    '-At',
    '-c',
    'select 99',
  ]);
  t.equal(result.stdout.trim(), '99', result.stderr);
  t.equal(await external.stop('SIGTERM'), 0);
  t.equal(await running.stop('SIGTERM'), 0);
});

t.test('a broken config file stops pgward start with file:line:column', async (t) => {
  const bad = path.join(root, 'bad.yaml');
  await writeFile(bad, 'upstream:\n  host: db\n  prot: 5432\n');
  const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawnPgward(['start', '--config', bad]);
    let output = '';
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('close', (code) => resolve({ code, output }));
  });
  t.equal(result.code, 1);
  t.match(result.output, `${bad}:3:3: upstream.prot: unknown key "prot"`);
});
