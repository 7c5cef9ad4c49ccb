/**
 * Client certificates end to end: a root CA, an intermediate that issues client certificates, and a
 * CRL, all made for this run. psql, pg and postgres.js log in with `cert` (CN, DN, ident map), with
 * `clientcert: verify-full` on top of scram-sha-256 and with `verify-ca`; expired, not-yet-valid,
 * wrong-CA and revoked certificates get 28000; a renewed server certificate is picked up by a reload
 * while sessions stay; and pgward logs in upstream with a certificate of its own.
 */

import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import pg from 'pg';
import postgres from 'postgres';
import t from 'tap';
import { createScramVerifier, formatScramVerifier } from '../../src/auth/scram/verifier.ts';
import { psql } from '../helpers/clients.ts';
import { CN, name, O, utf8 } from '../helpers/der-name.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import {
  chainPem,
  createCa,
  createCrl,
  createIntermediateCa,
  type Issued,
  issueCertificate,
} from '../helpers/pki.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const DAY = 86_400_000;
const root = await createCa('pgward test root');
const intermediate = await createIntermediateCa(root, 'pgward test clients');
const otherCa = await createCa('some other CA');
const server = await issueCertificate(root, {
  subject: 'CN=localhost',
  dns: ['localhost'],
  ips: ['127.0.0.1'],
  usage: 'server',
});
const client = (subject: string, options: { notBefore?: Date; notAfter?: Date; ca?: Issued } = {}) =>
  issueCertificate(options.ca ?? intermediate, { subject, usage: 'client', ...options });

const certs = {
  alice: await client('CN=alice'),
  bob: await client('CN=bob'),
  carol: await client('CN=carol@example.com'),
  dn: await client('C=US, O=Example Corp, CN=dn user'),
  frank: await client('CN=frank'),
  expired: await client('CN=alice', {
    notBefore: new Date(Date.now() - 10 * DAY),
    notAfter: new Date(Date.now() - DAY),
  }),
  future: await client('CN=alice', {
    notBefore: new Date(Date.now() + DAY),
    notAfter: new Date(Date.now() + 9 * DAY),
  }),
  foreign: await client('CN=alice', { ca: otherCa }),
  revoked: await client('CN=alice'),
};

/** The subject as OpenSSL prints it in RFC 2253 form (the reference for `clientname: DN`). */
function opensslDn(issued: Issued): string {
  const out = execFileSync('openssl', ['x509', '-noout', '-subject', '-nameopt', 'RFC2253'], {
    input: issued.certPem,
  });
  return out
    .toString()
    .replace(/^subject=/, '')
    .trim();
}
const dnUser = opensslDn(certs.dn);

const upstream = await startTestPostgres(t, {
  tls: { certPem: server.certPem, keyPem: server.keyPem, caPem: chainPem(root, intermediate) },
});
await upstream.query("create role pgward_cert login password 'unused'");

// pgward's own certificate for logging in upstream as pgward_cert.
const pgwardOwn = await issueCertificate(intermediate, { subject: 'CN=pgward_cert', usage: 'client' });

const ward = await startTestPgward(t, {
  upstream,
  hba: `maps:
  corp:
    - { system: "/^(.*)@example\\\\.com$", user: "\\\\1" }
rules:
  - { name: cn, type: hostssl, address: all, database: all, user: [alice, bob], method: cert }
  - { name: dn, type: hostssl, address: all, database: all, user: ${JSON.stringify(dnUser)}, method: cert, clientname: DN }
  - { name: mapped, type: hostssl, address: all, database: all, user: [carol, dave], method: cert, map: corp }
  - { name: scram-full, type: hostssl, address: all, database: all, user: frank, method: scram-sha-256, clientcert: verify-full }
  - { name: scram-ca, type: hostssl, address: all, database: all, user: gina, method: scram-sha-256, clientcert: verify-ca }
  - { name: upstream-cert, type: hostssl, address: all, database: all, user: ursula, method: cert, upstream_login: by-cert }
`,
  usersFile: `users:
  frank: { scram: "${formatScramVerifier(await createScramVerifier('frank pw'))}" }
  gina: { scram: "${formatScramVerifier(await createScramVerifier('gina pw'))}" }
`,
  files: {
    'server.crt': server.certPem,
    'server.key': server.keyPem,
    'ca.pem': chainPem(root, intermediate),
    'crl.pem': `${await createCrl(root, [])}${await createCrl(intermediate, [certs.revoked])}`,
    'upstream-client.crt': pgwardOwn.certPem,
    'upstream-client.key': pgwardOwn.keyPem,
  },
  tlsExtra: '    ca: ca.pem\n    crl: crl.pem',
  login: `{ mode: service, user: ${upstream.user}, password: ${JSON.stringify(upstream.password)} }`,
  upstreamTls: '{ mode: verify-full, ca: ca.pem, server_name: localhost }',
  upstreamExtra:
    'logins: { by-cert: { mode: service, user: pgward_cert, cert: upstream-client.crt, key: upstream-client.key } }',
});

/** A pg client presenting a certificate (not yet connected). */
function pgWithCertificate(user: string, issued: Issued): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user,
    database: 'postgres',
    ssl: { ca: chainPem(root), servername: 'localhost', cert: issued.certPem, key: issued.keyPem },
  });
}

/** Writes a client's certificate and key next to the config, for psql. */
async function keyFiles(name: string, issued: Issued): Promise<{ cert: string; key: string }> {
  const cert = path.join(ward.dir, `${name}.crt`);
  const key = path.join(ward.dir, `${name}.key`);
  await writeFile(cert, issued.certPem);
  await writeFile(key, issued.keyPem, { mode: 0o600 });
  return { cert, key };
}

async function psqlAs(user: string, issued: Issued | null, password?: string) {
  const files = issued ? await keyFiles(`client-${issued.cert.serialNumber}`, issued) : null;
  const conninfo = [
    `host=localhost hostaddr=127.0.0.1 port=${ward.port} dbname=postgres`,
    `user='${user.replaceAll("'", "\\'")}' sslmode=verify-full sslrootcert=${ward.dir}/ca.pem`,
    files ? `sslcert=${files.cert} sslkey=${files.key}` : '',
  ].join(' ');
  return psql(conninfo, ['-tAc', 'select session_user'], password === undefined ? {} : { password });
}

t.test('cert: psql, pg and postgres.js log in when the CN is the user', async (t) => {
  const viaPsql = await psqlAs('alice', certs.alice);
  t.equal(viaPsql.code, 0, viaPsql.stderr);
  t.equal(viaPsql.stdout.trim(), upstream.user, 'the service login runs the session');

  const viaPg = pgWithCertificate('alice', certs.alice);
  await viaPg.connect();
  t.same((await viaPg.query('select 1 as n')).rows, [{ n: 1 }], 'pg');
  await viaPg.end();

  const sql = postgres({
    host: '127.0.0.1',
    port: ward.port,
    user: 'alice',
    database: 'postgres',
    ssl: { ca: chainPem(root), servername: 'localhost', cert: certs.alice.certPem, key: certs.alice.keyPem },
    max: 1,
  });
  t.same(await sql`select 2 as n`, [{ n: 2 }], 'postgres.js');
  await sql.end();
  const accepted = ward.logs.find({ msg: 'auth decision', rule: 'cn', result: 'accepted' });
  t.equal(String(accepted.at(-1)?.identity), 'CN "alice"', 'the log names the certificate identity');
});

t.test('cert: a CN that is not the user, and no certificate at all, are refused', async (t) => {
  const mismatch = await psqlAs('alice', certs.bob);
  t.not(mismatch.code, 0);
  t.match(mismatch.stderr, /FATAL: {2}certificate authentication failed for user "alice"/);
  const none = await psqlAs('alice', null);
  t.match(none.stderr, /FATAL: {2}connection requires a valid client certificate/);
  const viaPg = pgWithCertificate('bob', certs.alice);
  await t.rejects(viaPg.connect(), {
    code: '28000',
    message: 'certificate authentication failed for user "bob"',
  });
});

t.test('clientname: DN matches the subject DN in RFC 2253 form', async (t) => {
  t.equal(dnUser, 'CN=dn user,O=Example Corp,C=US');
  const result = await psqlAs(dnUser, certs.dn);
  t.equal(result.code, 0, result.stderr);
  const wrong = await psqlAs(dnUser, certs.alice);
  t.match(wrong.stderr, /certificate authentication failed/);
});

t.test('an ident map with a regex maps carol@example.com to carol, and nobody else', async (t) => {
  const carol = await psqlAs('carol', certs.carol);
  t.equal(carol.code, 0, carol.stderr);
  const line = ward.logs.find({ msg: 'auth decision', rule: 'mapped', result: 'accepted' }).at(-1);
  t.match(String(line?.identity), /CN "carol@example.com" \(ident map "corp", entry 1/);
  const dave = await psqlAs('dave', certs.carol);
  t.match(dave.stderr, /certificate authentication failed for user "dave"/);
});

t.test(
  'clientcert: verify-full on scram-sha-256 needs both the password and the matching certificate',
  async (t) => {
    const both = await psqlAs('frank', certs.frank, 'frank pw');
    t.equal(both.code, 0, both.stderr);
    const wrongName = await psqlAs('frank', certs.alice, 'frank pw');
    t.match(wrongName.stderr, /certificate authentication failed for user "frank"/);
    const wrongPassword = await psqlAs('frank', certs.frank, 'nope');
    t.match(wrongPassword.stderr, /password authentication failed for user "frank"/);
    const noCert = await psqlAs('frank', null, 'frank pw');
    t.match(noCert.stderr, /connection requires a valid client certificate/);
  },
);

t.test('clientcert: verify-ca needs a valid certificate, whatever its name', async (t) => {
  const ok = await psqlAs('gina', certs.alice, 'gina pw');
  t.equal(ok.code, 0, ok.stderr);
  const expired = await psqlAs('gina', certs.expired, 'gina pw');
  t.match(expired.stderr, /certificate validation failed for user "gina"/);
});

t.test('expired, not yet valid, unknown CA and revoked certificates: 28000 with the reason', async (t) => {
  const cases: [keyof typeof certs, RegExp, string][] = [
    ['expired', /has expired/, 'expired'],
    ['future', /not yet valid/, 'not-yet-valid'],
    ['foreign', /not signed by a trusted certificate authority/, 'untrusted'],
    ['revoked', /has been revoked/, 'revoked'],
  ];
  for (const [name, detail, reason] of cases) {
    const result = await psqlAs('alice', certs[name]);
    t.match(result.stderr, /FATAL: {2}certificate validation failed for user "alice"/, name);
    t.match(result.stderr, detail, `${name}: the detail says why`);
    const logged = ward.logs.find({ msg: 'auth decision', result: 'rejected' }).at(-1);
    t.match(String(logged?.reason), new RegExp(`^${reason} \\(`), `${name}: logged`);
  }
  const viaPg = pgWithCertificate('alice', certs.revoked);
  await t.rejects(viaPg.connect(), {
    code: '28000',
    message: 'certificate validation failed for user "alice"',
  });
});

t.test('a CN with an embedded NUL ends the connection without a word, whatever the rule', async (t) => {
  // gina's rule (scram + verify-ca) would only want some valid certificate: PostgreSQL still drops
  // the connection, since such a CN is made to fool name checks.
  const nul = await issueCertificate(intermediate, {
    subject: new x509.Name(name([[O, utf8('pgward')]], [[CN, utf8('gina\x00.evil.example')]])),
    usage: 'client',
  });
  const dropped = await psqlAs('gina', nul, 'gina pw');
  t.not(dropped.code, 0);
  t.notMatch(dropped.stderr, /FATAL/, 'no ErrorResponse');
  t.match(dropped.stderr, /server closed the connection unexpectedly|SSL SYSCALL error|EOF/);
  t.match(ward.logs.find({ msg: "SSL certificate's common name contains embedded null" }), [
    { subject: 'CN=gina\\00.evil.example,O=pgward' },
  ]);
});

t.test('pgward logs in upstream with a certificate of its own (upstream cert method)', async (t) => {
  const hbaFile = String((await upstream.query('show hba_file')).rows[0]?.hba_file);
  const rules = await readFile(hbaFile, 'utf8');
  await writeFile(hbaFile, `hostssl all pgward_cert 127.0.0.1/32 cert\n${rules}`);
  await upstream.query('select pg_reload_conf()');
  const result = await psqlAs('ursula', await client('CN=ursula'));
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stdout.trim(), 'pgward_cert', "the upstream accepted pgward's certificate for pgward_cert");
});

/** The fingerprint of the certificate a new handshake presents. */
async function presentedFingerprint(): Promise<string> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port: ward.port,
    ALPNProtocols: ['postgresql'],
    rejectUnauthorized: false,
  });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

t.test('a renewed server certificate is used after a reload; running sessions stay', async (t) => {
  const session = pgWithCertificate('alice', certs.alice);
  await session.connect();
  const before = await presentedFingerprint();
  const renewed = await issueCertificate(root, {
    subject: 'CN=localhost',
    dns: ['localhost'],
    usage: 'server',
  });
  await writeFile(path.join(ward.dir, 'server.crt'), renewed.certPem);
  await writeFile(path.join(ward.dir, 'server.key'), renewed.keyPem);
  t.ok(ward.pgward.reload('test: renewed certificate'));
  const after = await presentedFingerprint();
  t.not(after, before, 'new handshakes present the renewed certificate');
  t.same((await session.query('select 3 as n')).rows, [{ n: 3 }], 'the session opened before still runs');
  await session.end();
  const renewedFingerprint = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], {
    input: renewed.certPem,
  })
    .toString()
    .replace(/^.*=/, '')
    .trim();
  t.equal(after, renewedFingerprint);
});
