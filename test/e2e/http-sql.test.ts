/**
 * The HTTP `/sql` endpoint end to end, against a real PostgreSQL: HBA rules with `protocol: http`
 * choose the method; over HTTPS the client certificate's CN is the user when the request names none
 * and must match when it does (seed 004); Basic credentials answer password rules; `http.default_user`
 * names requests without credentials (trust). Statements run with bound arguments and come back as
 * JSON; every refusal is a SQLSTATE with an HTTP status. curl is run as a real client.
 */

import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import t from 'tap';
import { curl } from '../helpers/clients.ts';
import { CN, name, utf8 } from '../helpers/der-name.ts';
import { basic, postSql, type SqlTarget } from '../helpers/http-sql.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { chainPem, createCa, createIntermediateCa, type Issued, issueCertificate } from '../helpers/pki.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const DAY = 86_400_000;
const root = await createCa('pgward http root');
const clientCa = await createIntermediateCa(root, 'pgward http clients');
const server = await issueCertificate(root, {
  subject: 'CN=localhost',
  dns: ['localhost'],
  ips: ['127.0.0.1'],
  usage: 'server',
});
const client = (subject: string, options: { notBefore?: Date; notAfter?: Date } = {}) =>
  issueCertificate(clientCa, { subject, usage: 'client', ...options });
const certs = {
  alice: await client('CN=alice'),
  expired: await client('CN=alice', {
    notBefore: new Date(Date.now() - 10 * DAY),
    notAfter: new Date(Date.now() - DAY),
  }),
  mallory: await client('CN=mallory'),
};

const upstream = await startTestPostgres(t);
for (const role of ['alice', 'bob', 'paula', 'dustin', 'pgonly'])
  await upstream.query(`create role ${role} login password '${upstream.password}'`);
await upstream.query('grant pg_read_all_stats to paula');

const ward = await startTestPgward(t, {
  upstream,
  http: true,
  https: true,
  hba: `rules:
  - { name: http-cert, type: hostssl, protocol: http, address: all, database: all, user: [alice, bob, mallory], method: cert }
  - { name: http-password, type: host, protocol: http, address: all, database: all, user: paula, method: password, allow_cleartext: true }
  - { name: http-reject, type: host, protocol: http, address: all, database: all, user: rex, method: reject }
  - { name: http-trust, type: host, protocol: http, address: all, database: all, user: dustin, method: trust }
  - { name: pg-only, type: host, protocol: pg, address: all, database: all, user: all, method: trust }
`,
  users: { paula: 'paula pw' },
  files: { 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': chainPem(root, clientCa) },
  tlsExtra: '    ca: ca.pem',
  extraConfig: 'http: { default_user: dustin, max_body_bytes: 4096, max_result_bytes: 65536 }',
});
if (ward.httpPort === null || ward.httpsPort === null) throw new Error('no HTTP listeners');
const plain: SqlTarget = { port: ward.httpPort };
const secure = (issued?: Issued): SqlTarget => ({
  port: ward.httpsPort ?? 0,
  tls: { ca: chainPem(root), ...(issued ? { cert: issued.certPem, key: issued.keyPem } : {}) },
});
const WHO = { stmt: 'select session_user::text as who' };

t.test('over HTTPS the certificate CN is the user when the request names none', async (t) => {
  const response = await postSql(secure(certs.alice), WHO);
  t.equal(response.status, 200);
  t.same(response.body.rows, [['alice']]);
  t.same(response.body.cols, ['who']);
  t.match(ward.logs.find({ msg: 'auth decision', protocol: 'http', rule: 'http-cert' }), [
    { result: 'accepted', identity: 'alice', user: 'alice', tls: true },
  ]);
});

t.test('a user named in Basic credentials must match the CN', async (t) => {
  const same = await postSql(secure(certs.alice), WHO, { authorization: basic('alice', 'ignored') });
  t.equal(same.status, 200);
  t.same(same.body.rows, [['alice']]);
  const other = await postSql(secure(certs.alice), WHO, { authorization: basic('bob', '') });
  t.equal(other.status, 401);
  t.same(other.body.error, { code: '28000', message: 'certificate authentication failed for user "bob"' });
  t.match(other.headers['www-authenticate'], /^Basic realm="pgward"/);
});

t.test('an expired certificate is refused with the reason', async (t) => {
  const response = await postSql(secure(certs.expired), WHO);
  t.equal(response.status, 401);
  t.equal(response.body.error?.code, '28000');
  t.equal(response.body.error?.message, 'certificate validation failed for user "alice"');
  t.match(response.body.error?.detail, /expired/);
});

t.test('a CN with an embedded NUL ends the HTTPS connection before any request', async (t) => {
  const nul = await issueCertificate(clientCa, {
    subject: new x509.Name(name([[CN, utf8('alice\x00.evil')]])),
    usage: 'client',
  });
  await t.rejects(postSql(secure(nul), WHO), /socket hang up|ECONNRESET/);
  t.equal(
    ward.logs.find({ msg: "SSL certificate's common name contains embedded null", protocol: 'http' }).length,
    1,
  );
});

t.test('without a certificate or credentials the default user applies', async (t) => {
  // dustin's rule is a `host` rule (either transport); his name came from http.default_user.
  const overTls = await postSql(secure(), WHO);
  t.equal(overTls.status, 200);
  t.same(overTls.body.rows, [['dustin']]);
  const overPlain = await postSql(plain, WHO);
  t.same(overPlain.body.rows, [['dustin']]);
});

t.test('?database= chooses the database (default postgres), and HBA sees it', async (t) => {
  await upstream.query('create database http_other');
  const other = await postSql(
    plain,
    { stmt: 'select current_database()::text' },
    { path: '/sql?database=http_other' },
  );
  t.same(other.body.rows, [['http_other']]);
  const byDefault = await postSql(plain, { stmt: 'select current_database()::text' });
  t.same(byDefault.body.rows, [['postgres']]);
  const missing = await postSql(plain, WHO, { path: '/sql?database=no_such_db' });
  t.equal(missing.status, 400);
  t.same(missing.body.error, { code: '3D000', message: 'database "no_such_db" does not exist' });
});

t.test('a cert rule is hostssl: plain HTTP finds no rule for it', async (t) => {
  const response = await postSql(plain, WHO, { authorization: basic('alice', 'x') });
  t.equal(response.status, 401);
  t.equal(response.body.error?.code, '28000');
  t.match(response.body.error?.message, /^no pg_hba\.conf entry for host "127\.0\.0\.1", user "alice"/);
});

t.test('password rules take the Basic password', async (t) => {
  const ok = await postSql(plain, WHO, { authorization: basic('paula', 'paula pw') });
  t.equal(ok.status, 200);
  t.same(ok.body.rows, [['paula']]);
  const wrong = await postSql(plain, WHO, { authorization: basic('paula', 'nope') });
  t.equal(wrong.status, 401);
  t.same(wrong.body.error, { code: '28P01', message: 'password authentication failed for user "paula"' });
  const empty = await postSql(plain, WHO, { authorization: basic('paula', '') });
  t.equal(empty.status, 401);
  t.equal(empty.body.error?.code, '28P01');
});

t.test('reject rules and pg-only rules refuse HTTP', async (t) => {
  const rejected = await postSql(plain, WHO, { authorization: basic('rex', 'x') });
  t.equal(rejected.status, 401);
  t.match(
    rejected.body.error?.message,
    /^pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "rex"/,
  );
  const pgOnly = await postSql(plain, WHO, { authorization: basic('pgonly', 'x') });
  t.equal(pgOnly.status, 401);
  t.match(pgOnly.body.error?.message, /^no pg_hba\.conf entry/);
});

t.test('a NUL in a name cannot smuggle startup parameters upstream', async (t) => {
  const smuggled = await postSql(plain, WHO, { path: '/sql?database=postgres%00user%00postgres' });
  t.equal(smuggled.status, 400);
  t.same(smuggled.body.error, {
    code: '22023',
    message: 'the database name must not contain a NUL character',
  });
  const honest = await postSql(plain, WHO, { path: '/sql?database=postgres' });
  t.same(honest.body.rows, [['dustin']], 'the default user stays who it is');
});

t.test('malformed or unsupported Authorization headers get 401 with the reason', async (t) => {
  for (const [header, message] of [
    ['Digest abc', 'unsupported authorization scheme "Digest"'],
    ['Bearer abc def', 'malformed Bearer token'],
    ['Basic !!!', 'malformed Basic credentials'],
    [
      `Basic ${Buffer.from('no colon').toString('base64')}`,
      'malformed Basic credentials: no ":" between user and password',
    ],
    [`Basic ${Buffer.from(':pw').toString('base64')}`, 'malformed Basic credentials: the user name is empty'],
  ] as const) {
    const response = await postSql(plain, WHO, { authorization: header });
    t.equal(response.status, 401, header);
    t.same(response.body.error, { code: '28000', message }, header);
  }
});

t.test('arguments are bound, never spliced into the statement', async (t) => {
  const hostile = "'; drop role dustin; --";
  const response = await postSql(plain, {
    stmt: 'select $1::int + 1 as n, $2::text as t, $3::bool as b, $4::jsonb as j, $5::int[] as a, $6::int8 as big, null::text as z',
    args: [41, hostile, true, { k: [1, 'two'] }, [1, 2, 3], '9007199254740993'],
  });
  t.equal(response.status, 200);
  t.same(response.body.cols, ['n', 't', 'b', 'j', 'a', 'big', 'z']);
  t.same(response.body.col_types, [23, 25, 16, 3802, 1007, 20, 25]);
  t.same(response.body.rows, [[42, hostile, true, { k: [1, 'two'] }, '{1,2,3}', '9007199254740993', null]]);
  t.equal(response.body.rowcount, 1);
  t.equal(response.body.command, 'SELECT 1');
  const still = await upstream.query("select 1 from pg_roles where rolname = 'dustin'");
  t.equal(still.rowCount, 1, 'the role is still there');
});

t.test('a statement error comes back with its SQLSTATE', async (t) => {
  const response = await postSql(plain, { stmt: 'select no_such_column' });
  t.equal(response.status, 400);
  t.equal(response.body.error?.code, '42703');
  t.match(response.body.error?.message, /column "no_such_column" does not exist/);
  const ddl = await postSql(plain, { stmt: 'create temporary table tmp_http (id int)' });
  t.equal(ddl.status, 200);
  t.same(ddl.body, { cols: [], col_types: [], rows: [], rowcount: -1, command: 'CREATE TABLE' });
});

t.test('bad request bodies are refused before authentication', async (t) => {
  const cases: [unknown, string][] = [
    ['{not json', 'request body is not JSON'],
    [[1, 2], 'request body must be a JSON object with "stmt"'],
    [{ stmt: 'select 1', bulk_args: [] }, 'unknown key "bulk_args" (expected "stmt", "args")'],
    [{ stmt: '' }, '"stmt" must be a non-empty string'],
    [{ stmt: 'select 1', args: 'x' }, '"args" must be a list'],
  ];
  for (const [body, message] of cases) {
    const response = await postSql(plain, body);
    t.equal(response.status, 400, message);
    t.equal(response.body.error?.code, '22P02', message);
    t.match(response.body.error?.message, message);
  }
  const large = await postSql(plain, { stmt: `select '${'x'.repeat(5000)}'` });
  t.equal(large.status, 413);
  t.equal(large.body.error?.code, '54000');
  const get = await postSql(plain, '', { method: 'GET' });
  t.equal(get.status, 405);
  t.equal(get.headers.allow, 'POST');
});

t.test('a result over http.max_result_bytes is dropped with 54000', async (t) => {
  const response = await postSql(plain, { stmt: "select repeat('x', 100000) as big" });
  t.equal(response.status, 400);
  t.equal(response.body.error?.code, '54000');
  t.match(response.body.error?.detail, /65536 bytes/);
});

t.test('a client that hangs up takes its running statement with it', async (t) => {
  const controller = new AbortController();
  const pending = postSql(plain, { stmt: 'select pg_sleep(60)' }, { signal: controller.signal });
  const running = async () =>
    (
      await upstream.query(
        "select count(*)::int as n from pg_stat_activity where application_name = 'pgward-http' and query like 'select pg_sleep%'",
      )
    ).rows[0].n as number;
  for (let i = 0; i < 100 && (await running()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(await running(), 1, 'the statement runs upstream');
  controller.abort();
  await t.rejects(pending);
  // pgward cancels the statement upstream (a closed socket alone would leave it running).
  for (let i = 0; i < 100 && (await running()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(await running(), 0, 'the upstream backend is gone');
});

t.test('parallel requests each get their own upstream login', async (t) => {
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      postSql(secure(certs.alice), { stmt: 'select $1::int as i, session_user::text as who', args: [i] }),
    ),
  );
  t.same(
    responses.map((r) => r.body.rows),
    Array.from({ length: 20 }, (_, i) => [[i, 'alice']]),
  );
});

/** curl's output as the body and the status line `-w` appended. */
function splitCurl(stdout: string): { body: string; status: string } {
  const end = stdout.lastIndexOf('\n');
  return { body: stdout.slice(0, end), status: stdout.slice(end + 1) };
}

t.test('curl with a client certificate', async (t) => {
  const files = { cert: path.join(ward.dir, 'curl.crt'), key: path.join(ward.dir, 'curl.key') };
  await writeFile(files.cert, certs.alice.certPem);
  await writeFile(files.key, certs.alice.keyPem, { mode: 0o600 });
  const url = `https://localhost:${ward.httpsPort}/sql`;
  const common = [
    '--resolve',
    `localhost:${ward.httpsPort}:127.0.0.1`,
    '--cacert',
    path.join(ward.dir, 'ca.pem'),
  ];
  const withCert = await curl([
    ...common,
    '--cert',
    files.cert,
    '--key',
    files.key,
    '-H',
    'content-type: application/json',
    '--data',
    JSON.stringify(WHO),
    url,
  ]);
  const { body, status } = splitCurl(withCert.stdout);
  t.equal(status, '200', withCert.stderr);
  t.same(JSON.parse(body).rows, [['alice']]);
  const asMallory = await curl([
    ...common,
    '--cert',
    files.cert,
    '--key',
    files.key,
    '-u',
    'mallory:x',
    '--data',
    JSON.stringify(WHO),
    url,
  ]);
  const refusal = splitCurl(asMallory.stdout);
  t.equal(refusal.status, '401');
  t.equal(JSON.parse(refusal.body).error.message, 'certificate authentication failed for user "mallory"');
});
