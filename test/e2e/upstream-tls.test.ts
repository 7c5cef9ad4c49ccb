import pg from 'pg';
import t, { type Test } from 'tap';
import { startTestPgward, TRUST_ALL } from '../helpers/pgward.ts';
import { createCa, issueCertificate } from '../helpers/pki.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const ca = await createCa('upstream CA');
const otherCa = await createCa('some other CA');
const serverCert = await issueCertificate(ca, {
  subject: 'CN=db.test',
  dns: ['db.test', 'localhost'],
  ips: ['127.0.0.1'],
  usage: 'server',
});
const upstream = await startTestPostgres(t, { tls: serverCert });
const files = { 'upstream-ca.crt': ca.certPem, 'other-ca.crt': otherCa.certPem };

/** Connects through a pgward using `upstreamTls`; returns whether the upstream session is TLS, or the error. */
async function throughPgward(t: Test, upstreamTls: string) {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false, upstreamTls, files });
  const client = new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    database: 'postgres',
  });
  try {
    await client.connect();
  } catch (error) {
    return { error: error as pg.DatabaseError };
  }
  const { rows } = await client.query('select ssl, version from pg_stat_ssl where pid = pg_backend_pid()');
  await client.end();
  return { ssl: rows[0].ssl as boolean, version: rows[0].version as string };
}

t.test('mode require encrypts without verifying', async (t) => {
  t.match(await throughPgward(t, '{ mode: require }'), { ssl: true, version: /^TLSv1\.[23]$/ });
});

t.test('mode prefer uses TLS when the server offers it', async (t) => {
  t.match(await throughPgward(t, '{ mode: prefer }'), { ssl: true });
});

t.test('mode disable does not', async (t) => {
  t.match(await throughPgward(t, '{ mode: disable }'), { ssl: false });
});

t.test('verify-full accepts a certificate from the configured CA for the right name', async (t) => {
  t.match(await throughPgward(t, '{ mode: verify-full, ca: upstream-ca.crt }'), { ssl: true });
  t.match(await throughPgward(t, '{ mode: verify-full, ca: upstream-ca.crt, server_name: db.test }'), {
    ssl: true,
  });
});

t.test('verify-full refuses another CA and another name, with 08006 naming the upstream', async (t) => {
  const wrongCa = await throughPgward(t, '{ mode: verify-full, ca: other-ca.crt }');
  t.match(wrongCa.error, {
    code: '08006',
    message: `could not connect to upstream server "127.0.0.1:${upstream.port}"`,
  });
  t.match(wrongCa.error?.detail, /TLS handshake failed/);
  const wrongName = await throughPgward(
    t,
    '{ mode: verify-full, ca: upstream-ca.crt, server_name: evil.test }',
  );
  t.match(wrongName.error, { code: '08006' });
  t.match(wrongName.error?.detail, /evil\.test/);
});

t.test('verify-ca checks the chain but not the name', async (t) => {
  t.match(await throughPgward(t, '{ mode: verify-ca, ca: upstream-ca.crt, server_name: evil.test }'), {
    ssl: true,
  });
  t.match((await throughPgward(t, '{ mode: verify-ca, ca: other-ca.crt }')).error, { code: '08006' });
});

t.test('require against a server without TLS fails clearly', async (t) => {
  const plain = await startTestPostgres(t);
  const ward = await startTestPgward(t, {
    upstream: plain,
    hba: TRUST_ALL,
    tls: false,
    upstreamTls: '{ mode: require }',
  });
  const error = await new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    database: 'postgres',
  })
    .connect()
    .catch((e: pg.DatabaseError) => e);
  t.match(error, {
    code: '08006',
    detail: 'server does not support TLS, but tls mode "require" requires it',
  });
});
