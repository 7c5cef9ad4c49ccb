import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { type CliResult, runPgward, spawnPgward } from '../helpers/pgward-cli.ts';

const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-cli-hba-'));
await chmod(dir, 0o755);
t.teardown(() => rm(dir, { recursive: true, force: true }));

function pgward(args: string[]): Promise<CliResult> {
  return runPgward(args, dir);
}

const HBA = `rules:
  - { name: local-admins, type: local, database: all, user: +admins, method: trust }
  - { name: office, type: hostssl, address: [10.0.0.0/8, "fd00::/8"], database: [app, /^report_], user: all, method: password }
  - { name: block-mallory, type: host, address: all, database: all, user: mallory, method: reject }
  - { name: loopback, type: host, address: 127.0.0.1, database: all, user: all, method: trust }
`;

async function writeConfig(
  name: string,
  hba: string,
  users = 'users:\n  alice: { groups: [admins] }\n',
): Promise<string> {
  const sub = path.join(dir, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(sub, { recursive: true }));
  await writeFile(path.join(sub, 'hba.yaml'), hba);
  await writeFile(path.join(sub, 'users.yaml'), users);
  const config = path.join(sub, 'pgward.yaml');
  await writeFile(
    config,
    'listen: { pg: "127.0.0.1:0" }\nupstream: { host: 127.0.0.1, port: 1 }\nhba: hba.yaml\nusers: users.yaml\nlog: { level: info }\n',
  );
  return config;
}

t.test('pgward check accepts a good configuration and names the files it read', async (t) => {
  const config = await writeConfig('good', HBA);
  const result = await pgward(['check', '--config', config]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^ok: .*good\/pgward\.yaml, .*good\/hba\.yaml, .*good\/users\.yaml \(4 rules\)$/m);
});

t.test('pgward check prints every problem of every file with its position, and exits 1', async (t) => {
  const config = await writeConfig(
    'bad',
    `rules:
  - { type: host, address: 10.1.0.0/8, database: all, user: all, method: trust }
  - { type: hostssl, address: all, database: all, user: all, method: ldap }
`,
    'users:\n  alice: { groups: "+admins" }\n',
  );
  const result = await pgward(['check', '--config', config]);
  t.equal(result.code, 1);
  const hba = path.join(dir, 'bad', 'hba.yaml');
  const users = path.join(dir, 'bad', 'users.yaml');
  t.match(
    result.stderr,
    `${hba}:2:28: rules[0].address: "10.1.0.0/8" has host bits set beyond /8; did you mean 10.0.0.0/8?`,
  );
  t.match(result.stderr, `${hba}:3:70: rules[1].method: must be one of trust, reject, password, md5`);
  t.match(result.stderr, `${users}:2:20: users.alice.groups: a group name is a plain name`);
});

t.test('pgward check refuses a method this pgward does not implement yet, at its position', async (t) => {
  const config = await writeConfig(
    'unimplemented',
    'rules:\n  - { type: hostssl, address: all, database: all, user: all, method: browser }\n',
  );
  const result = await pgward(['check', '--config', config]);
  t.equal(result.code, 1);
  t.match(
    result.stderr,
    'hba.yaml:2:70: rules[0].method: method "browser" is not supported by this version of pgward',
  );
});

t.test('pgward check warns about a rule that can never match', async (t) => {
  const config = await writeConfig(
    'shadowed',
    `rules:
  - { name: wide, type: host, address: 10.0.0.0/8, database: all, user: all, method: trust }
  - { name: narrow, type: hostssl, address: 10.1.0.0/16, database: app, user: bob, method: reject }
`,
  );
  const result = await pgward(['check', '--config', config]);
  t.equal(result.code, 0);
  t.match(
    result.stderr,
    'warning: ' +
      `${path.join(dir, 'shadowed', 'hba.yaml')}:3:5: rules[1]: rule "narrow" can never match: rule "wide" (line 2) matches every connection it would`,
  );
});

t.test('pgward explain names the matching rule and why each earlier rule did not match', async (t) => {
  const config = await writeConfig('explain', HBA);
  const office = await pgward([
    'explain',
    '--config',
    config,
    '--user',
    'bob',
    '--db',
    'report_2026',
    '--addr',
    '::ffff:10.2.3.4',
    '--tls',
  ]);
  t.equal(office.code, 0, office.stderr);
  const hba = path.join(dir, 'explain', 'hba.yaml');
  t.equal(
    office.stdout,
    [
      'connection: user "bob", database "report_2026", from 10.2.3.4 over TCP/IP with TLS, protocol pg',
      `rules: ${hba}`,
      `  1. "local-admins" (${hba}:2): no (type: the rule is local, this is a TCP/IP connection with TLS)`,
      `→ 2. "office" (${hba}:3) matches: method password`,
      '',
    ].join('\n'),
  );
  const plain = await pgward(['explain', '--config', config, '--user', 'mallory', '--addr', '10.2.3.4']);
  t.match(
    plain.stdout,
    `2. "office" (${hba}:3): no (type: the rule is hostssl, this is a TCP/IP connection without TLS)`,
  );
  t.match(plain.stdout, '→ 3. "block-mallory"');
  const local = await pgward(['explain', '--config', config, '--user', 'alice', '--addr', 'local']);
  t.match(local.stdout, '→ 1. "local-admins"');
  const nobody = await pgward([
    'explain',
    '--config',
    config,
    '--user',
    'eve',
    '--db',
    'app',
    '--addr',
    '192.0.2.9',
    '--tls',
  ]);
  t.equal(nobody.code, 1);
  t.match(nobody.stdout, `address: 192.0.2.9 (IPv4) is not any of 10.0.0.0/8, fd00::/8`);
  t.match(
    nobody.stdout,
    '→ no rule matches: the client gets FATAL 28000 no pg_hba.conf entry for host "192.0.2.9", user "eve", database "app", SSL encryption',
  );
  const usage = await pgward(['explain', '--config', config, '--user', 'eve', '--addr', 'not-an-ip']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, '--addr must be an IP address or "local"');
});

t.test('SIGHUP reloads a running pgward, and a file change with an error is refused', async (t) => {
  const config = await writeConfig('running', HBA);
  const child = spawnPgward(['start', '--config', config]);
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const waitFor = async (text: string) => {
    const deadline = Date.now() + 20_000;
    while (!output.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no "${text}" in:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await waitFor('"msg":"listening (pg)"');
  child.kill('SIGHUP');
  await waitFor('"reason":"SIGHUP","rules":4,"msg":"configuration reloaded"');
  await writeFile(path.join(dir, 'running', 'hba.yaml'), 'rules:\n  - { type: host }\n');
  await waitFor('configuration reload failed; the previous configuration stays in force');
  t.match(output, 'rules[0]: missing required key \\"method\\"');
  const exited = new Promise((resolve) => child.on('close', resolve));
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
