import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { psql } from '../helpers/clients.ts';
import { startTestPgward, usersYaml } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const upstream = await startTestPostgres(t);
/** Every client logs in upstream as the superuser: these tests are about which rule decides. */
const login = `{ mode: service, user: ${upstream.user}, password: ${JSON.stringify(upstream.password)} }`;

/** psql with one query; resolves with what it printed. */
function ask(host: string, port: number, user: string, sql = 'select 1') {
  return psql(`host=${host} port=${port} user=${user} dbname=postgres sslmode=disable`, ['-At', '-c', sql]);
}

t.test('psql over IPv4 and IPv6 loopback meets the rules of its own address family', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: false,
    listen: ['127.0.0.1:0', '[::1]:0'],
    hba: `rules:
  - { name: v4-alice, type: host, address: 127.0.0.0/8, database: all, user: alice, method: trust }
  - { name: v6-alice, type: host, address: "::1/128", database: all, user: alice, method: reject }
  - { name: v6-bob, type: host, address: "::1", database: all, user: bob, method: trust }
`,
  });
  const [v4, v6] = ward.addresses;
  if (!v4 || !v6) throw new Error('two addresses expected');
  const aliceV4 = await ask('127.0.0.1', v4.port, 'alice');
  t.equal(aliceV4.stdout.trim(), '1', aliceV4.stderr);
  const aliceV6 = await ask('::1', v6.port, 'alice');
  t.match(
    aliceV6.stderr,
    'FATAL:  pg_hba.conf rejects connection for host "::1", user "alice", database "postgres", no encryption',
  );
  const bobV6 = await ask('::1', v6.port, 'bob');
  t.equal(bobV6.stdout.trim(), '1', bobV6.stderr);
  const bobV4 = await ask('127.0.0.1', v4.port, 'bob');
  t.match(
    bobV4.stderr,
    'FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "bob", database "postgres", no encryption',
  );
  t.match(await ward.logs.waitFor({ msg: 'auth decision', user: 'bob', result: 'accepted' }), {
    rule: 'v6-bob',
  });
});

t.test('an IPv4 client of a dual-stack listener is matched as IPv4', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: false,
    listen: ['[::]:0'],
    hba: `rules:
  - { name: v6-only, type: host, address: "::/0", database: all, user: all, method: reject }
  - { name: v4, type: host, address: 127.0.0.1, database: all, user: all, method: trust }
`,
  });
  const result = await ask('127.0.0.1', ward.port, 'alice');
  t.equal(result.stdout.trim(), '1', result.stderr);
  t.match(await ward.logs.waitFor({ msg: 'auth decision', result: 'accepted' }), {
    rule: 'v4',
    peer: '127.0.0.1',
  });
});

t.test('a Unix-socket client meets local rules and no host rule', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: true,
    unixSocket: true,
    hba: `rules:
  - { name: local-alice, type: local, database: all, user: alice, method: trust }
  - { name: tcp-all, type: host, address: all, database: all, user: all, method: trust }
`,
  });
  t.equal(ward.unixSocket, path.join(ward.dir, `.s.PGSQL.${ward.port}`));
  const alice = await psql(`host=${ward.dir} port=${ward.port} user=alice dbname=postgres`, [
    '-At',
    '-c',
    'select 1',
  ]);
  t.equal(alice.stdout.trim(), '1', alice.stderr);
  const bob = await psql(`host=${ward.dir} port=${ward.port} user=bob dbname=postgres`, [
    '-At',
    '-c',
    'select 1',
  ]);
  t.match(
    bob.stderr,
    'FATAL:  no pg_hba.conf entry for host "[local]", user "bob", database "postgres", no encryption',
  );
  const viaTcp = await ask('127.0.0.1', ward.port, 'bob');
  t.equal(viaTcp.stdout.trim(), '1', 'bob still gets in over TCP');
});

t.test('+group and samerole follow the groups of users.yaml', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: false,
    groups: { alice: ['admins'], carol: ['reports'] },
    hba: `rules:
  - { name: admins, type: host, address: 127.0.0.1, database: all, user: +admins, method: trust }
  - { name: by-role, type: host, address: 127.0.0.1, database: samerole, user: all, method: trust }
`,
  });
  const alice = await ask('127.0.0.1', ward.port, 'alice');
  t.equal(alice.stdout.trim(), '1', alice.stderr);
  const carolReports = await psql(
    `host=127.0.0.1 port=${ward.port} user=carol dbname=reports sslmode=disable`,
    ['-At', '-c', 'select 1'],
  );
  // The rule matched (carol is in group reports); the upstream has no database "reports".
  t.match(carolReports.stderr, 'database "reports" does not exist');
  t.match(await ward.logs.waitFor({ msg: 'auth decision', user: 'carol', result: 'accepted' }), {
    rule: 'by-role',
  });
  const bob = await ask('127.0.0.1', ward.port, 'bob');
  t.match(bob.stderr, 'no pg_hba.conf entry for host "127.0.0.1", user "bob"');
});

t.test('a changed hba.yaml applies to new connections at once and leaves open sessions alone', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: false,
    watch: true,
    hba: `rules:
  - { name: alice-in, type: host, address: 127.0.0.1, database: all, user: alice, method: trust }
`,
  });
  const open = new pg.Client({ host: '127.0.0.1', port: ward.port, user: 'alice', database: 'postgres' });
  await open.connect();
  const reloaded = ward.logs.next({ msg: 'configuration reloaded' });
  await writeFile(
    path.join(ward.dir, 'hba.yaml'),
    `rules:
  - { name: alice-out, type: host, address: 127.0.0.1, database: all, user: alice, method: reject }
`,
  );
  t.match(await reloaded, { rules: 1, reason: /file changed: .*hba\.yaml/ });
  const refused = await ask('127.0.0.1', ward.port, 'alice');
  t.match(refused.stderr, 'pg_hba.conf rejects connection for host "127.0.0.1", user "alice"');
  t.same((await open.query('select 41 + 1 as answer')).rows, [{ answer: 42 }], 'the open session goes on');
  await open.end();
  t.match(ward.pgward.runtime.metrics.lastReload, { ok: true });
});

t.test(
  'a broken hba.yaml is refused whole: the old rules stay, the error is logged with its position',
  async (t) => {
    const ward = await startTestPgward(t, {
      upstream,
      login,
      tls: false,
      watch: true,
      http: true,
      hba: `rules:
  - { name: alice-in, type: host, address: 127.0.0.1, database: all, user: alice, method: trust }
`,
    });
    const failed = ward.logs.next({
      msg: 'configuration reload failed; the previous configuration stays in force',
    });
    const hbaFile = path.join(ward.dir, 'hba.yaml');
    await writeFile(
      hbaFile,
      `rules:
  - { name: everyone, type: host, address: 10.0.0.0/8, database: all, user: all, method: trust }
  - { name: typo, type: host, address: 10.1.0.0/8, database: all, user: all, method: trust }
`,
    );
    t.match(await failed, {
      error: `${hbaFile}:3:40: rules[1].address: "10.1.0.0/8" has host bits set beyond /8; did you mean 10.0.0.0/8?`,
    });
    const alice = await ask('127.0.0.1', ward.port, 'alice');
    t.equal(alice.stdout.trim(), '1', 'the old rules still let alice in');
    const health = (await (await fetch(`http://127.0.0.1:${ward.httpPort}/healthz`)).json()) as {
      lastReload: { ok: boolean; error: string };
    };
    t.match(health.lastReload, { ok: false, error: /rules\[1\]\.address/ });
    const metrics = await (await fetch(`http://127.0.0.1:${ward.httpPort}/metrics`)).text();
    t.match(metrics, /^pgward_config_last_reload_ok 0$/m);
  },
);

t.test('users.yaml reloads too: a new user can log in without a restart', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: false,
    watch: false,
    hba: `rules:
  - { name: password, type: host, address: 127.0.0.1, database: all, user: all, method: password, allow_cleartext: true }
`,
  });
  const before = await psql(
    `host=127.0.0.1 port=${ward.port} user=dave dbname=postgres sslmode=disable`,
    ['-c', 'select 1'],
    {
      password: 'dave-secret',
    },
  );
  t.match(before.stderr, 'password authentication failed for user "dave"');
  await writeFile(path.join(ward.dir, 'users.yaml'), await usersYaml({ dave: 'dave-secret' }));
  t.equal(ward.pgward.reload('SIGHUP'), true);
  const after = await psql(
    `host=127.0.0.1 port=${ward.port} user=dave dbname=postgres sslmode=disable`,
    ['-At', '-c', 'select 1'],
    { password: 'dave-secret' },
  );
  t.equal(after.stdout.trim(), '1', after.stderr);
});

t.test('pgward.yaml reloads its live parts; listen addresses wait for a restart', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    login,
    tls: false,
    watch: true,
    hba: `rules:
  - { name: all-in, type: host, address: 127.0.0.1, database: all, user: all, method: trust }
`,
  });
  const configFile = path.join(ward.dir, 'pgward.yaml');
  const original = await readFile(configFile, 'utf8');
  const reloaded = ward.logs.next({ msg: 'configuration reloaded' });
  const restartNeeded = ward.logs.next({
    msg: 'listen addresses change only on restart; the other changes are in force',
  });
  await writeFile(
    configFile,
    `${original.replace('pg: ["127.0.0.1:0"]', 'pg: ["127.0.0.1:0", "[::1]:0"]')}limits:\n  max_clients: 1\n`,
  );
  await restartNeeded;
  await reloaded;
  const first = new pg.Client({ host: '127.0.0.1', port: ward.port, user: 'alice', database: 'postgres' });
  await first.connect();
  const second = await ask('127.0.0.1', ward.port, 'bob');
  t.match(second.stderr, 'FATAL:  sorry, too many clients already');
  await first.end();
  t.equal(ward.pgward.runtime.config.listen.pg.length, 1, 'still one listen address until a restart');
});
