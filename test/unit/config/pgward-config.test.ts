import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parsePgwardConfig } from '../../../src/config/pgward-config.ts';
import { ConfigError } from '../../../src/errors/config-error.ts';

function problems(text: string, file = '/etc/pgward/pgward.yaml'): string[] {
  try {
    parsePgwardConfig(file, text);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message.split('\n');
  }
}

t.test('a minimal config gets every default', async (t) => {
  const config = parsePgwardConfig('/etc/pgward/pgward.yaml', 'upstream:\n  host: db.internal\n');
  t.same(config.listen.pg, [{ host: '127.0.0.1', port: 6432 }]);
  t.equal(config.upstream.port, 5432);
  t.equal(config.upstream.tls.mode, 'prefer');
  t.equal(config.hbaFile, '/etc/pgward/hba.yaml', 'hba.yaml next to the config');
  t.equal(config.limits.authTimeoutMs, 60_000);
  t.equal(config.limits.maxClients, 10_000);
});

t.test('every problem is reported with file:line:column and a dotted path', async (t) => {
  const text = [
    'listen:',
    '  pg: [127.0.0.1:6432, "nonsense"]',
    '  tsl: {}',
    'upstream:',
    '  host: db',
    '  port: 70000',
    '  tls: { mode: verify-full }',
    'limits:',
    '  auth_timeout_ms: soon',
    '',
  ].join('\n');
  t.same(problems(text), [
    '/etc/pgward/pgward.yaml:3:3: listen.tsl: unknown key "tsl" (known keys: pg, unix_socket_dir, http, https, tls)',
    '/etc/pgward/pgward.yaml:2:24: listen.pg[1]: expected host:port (IPv6 in brackets, e.g. [::1]:6432), got "nonsense"',
    '/etc/pgward/pgward.yaml:6:9: upstream.port: must be between 1 and 65535, got 70000',
    '/etc/pgward/pgward.yaml:7:8: upstream.tls: mode "verify-full" needs "ca" (the CA bundle to verify the server with)',
    '/etc/pgward/pgward.yaml:9:20: limits.auth_timeout_ms: expected an integer, got string "soon"',
  ]);
});

t.test('a missing upstream and YAML syntax errors are located', async (t) => {
  t.same(problems('listen: {}\n'), ['/etc/pgward/pgward.yaml:1:1: missing required key "upstream"']);
  t.match(problems('upstream:\n  host: [unclosed\n')[0], /^\/etc\/pgward\/pgward\.yaml:\d+:\d+: /);
});

t.test('secrets come from the environment or from files, never silently empty', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-secret-'));
  await writeFile(path.join(dir, 'pw'), 's3cret\n');
  process.env.PGWARD_TEST_SECRET = 'from-env';
  const file = path.join(dir, 'pgward.yaml');
  const fromEnv = parsePgwardConfig(
    file,
    'upstream:\n  host: db\n  login: { password: "${PGWARD_TEST_SECRET}" }\n',
  );
  t.equal(fromEnv.upstream.login.password, 'from-env');
  const fromFile = parsePgwardConfig(file, 'upstream:\n  host: db\n  login: { password: "file:pw" }\n');
  t.equal(fromFile.upstream.login.password, 's3cret');
  t.match(
    problems('upstream:\n  host: db\n  login: { password: "${PGWARD_UNSET_VAR}" }\n', file)[0],
    /3:22: upstream\.login\.password: environment variable PGWARD_UNSET_VAR is not set/,
  );
  t.match(
    problems('upstream:\n  host: db\n  login: { password: "file:missing" }\n', file)[0],
    /cannot read secret file/,
  );
});

t.test('login modes: service needs a user, same takes none', async (t) => {
  t.match(
    problems('upstream:\n  host: db\n  login: { mode: service }\n')[0],
    /mode "service" needs a "user"/,
  );
  t.match(
    problems('upstream:\n  host: db\n  login: { mode: same, user: x }\n')[0],
    /"user" applies to mode "service"/,
  );
  const service = parsePgwardConfig(
    '/x/p.yaml',
    'upstream:\n  host: db\n  login: { mode: service, user: svc, password: pw }\n',
  );
  t.same(service.upstream.login, { mode: 'service', user: 'svc', password: 'pw' });
});

t.test('listen addresses accept IPv6 in brackets', async (t) => {
  const config = parsePgwardConfig(
    '/x/p.yaml',
    'listen:\n  pg: ["[::1]:6432", ":7000"]\nupstream: { host: db }\n',
  );
  t.same(config.listen.pg, [
    { host: '::1', port: 6432 },
    { host: '127.0.0.1', port: 7000 },
  ]);
});

t.test('the http section and listen.https', async (t) => {
  const defaults = parsePgwardConfig('/etc/pgward/pgward.yaml', 'upstream:\n  host: db\n');
  t.same(defaults.http, { defaultUser: null, maxBodyBytes: 1024 * 1024, maxResultBytes: 64 * 1024 * 1024 });
  t.equal(defaults.listen.https, null);
  const set = parsePgwardConfig(
    '/etc/pgward/pgward.yaml',
    [
      'listen:',
      '  https: 127.0.0.1:8443',
      '  tls: { cert: s.crt, key: s.key }',
      'upstream: { host: db }',
      'http: { default_user: dustin, max_body_bytes: 4096, max_result_bytes: 65536 }',
      '',
    ].join('\n'),
  );
  t.same(set.listen.https, { host: '127.0.0.1', port: 8443 });
  t.same(set.http, { defaultUser: 'dustin', maxBodyBytes: 4096, maxResultBytes: 65536 });
  t.same(problems('listen:\n  https: 127.0.0.1:8443\nupstream: { host: db }\n'), [
    '/etc/pgward/pgward.yaml:2:3: listen.https: https needs "tls" (its certificate and key)',
  ]);
  t.same(problems('upstream: { host: db }\nhttp: { default_user: "", max_body_bytes: 1, user: x }\n'), [
    '/etc/pgward/pgward.yaml:2:46: http.user: unknown key "user" (known keys: default_user, max_body_bytes, max_result_bytes)',
    '/etc/pgward/pgward.yaml:2:43: http.max_body_bytes: must be between 64 and 1073741824, got 1',
    '/etc/pgward/pgward.yaml:2:23: http.default_user: must not be empty',
  ]);
});
