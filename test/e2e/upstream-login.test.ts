/**
 * The four upstream login modes against a real PostgreSQL: `same` (the client's user, a configured
 * password), `service` (a fixed account), `passthrough` (the client's cleartext password) and
 * `scram-passthrough` (the ClientKey recovered from the client's SCRAM proof, as PgBouncer does) —
 * chosen per rule or per user; and auth_query feeding scram-passthrough, PgBouncer's usual setup.
 */

import { readFile, writeFile } from 'node:fs/promises';
import pg from 'pg';
import t from 'tap';
import { md5PasswordHash } from '../../src/auth/password.ts';
import { createScramVerifier, formatScramVerifier } from '../../src/auth/scram/verifier.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const upstream = await startTestPostgres(t);
for (const [role, password] of [
  ['svc', 'svc pw'],
  ['dave', 'dave pw'],
  ['erin', 'erin pw'],
  ['erin2', 'erin pw'],
  ['sam', 'sam upstream pw'],
  ['frank', 'frank pw'],
  ['lookup', 'lookup pw'],
] as const) {
  await upstream.query(`create role ${role} login password '${password}'`);
}
await upstream.query('grant pg_read_all_data to lookup');
// mona's upstream password is stored as md5 and her pg_hba line asks for md5: pgward answers the challenge.
// (upstream.query opens a connection per call, so the hash is given, not set password_encryption.)
await upstream.query(`create role mona login password '${md5PasswordHash('mona upstream pw', 'mona')}'`);
const hbaFile = String((await upstream.query('show hba_file')).rows[0]?.hba_file);
await writeFile(hbaFile, `host all mona all md5\n${await readFile(hbaFile, 'utf8')}`);
await upstream.query('select pg_reload_conf()');
// PgBouncer's documented pattern: a SECURITY DEFINER function, so the lookup role needs no superuser.
await upstream.query(`create function public.pgward_lookup(text) returns table (usename name, passwd text)
  language sql security definer as 'select usename, passwd from pg_catalog.pg_shadow where usename = $1'`);
await upstream.query('revoke all on function public.pgward_lookup(text) from public');
await upstream.query('grant execute on function public.pgward_lookup(text) to lookup');

/** The verifier PostgreSQL itself stored for a role. */
async function upstreamVerifier(role: string): Promise<string> {
  const result = await upstream.query('select rolpassword from pg_authid where rolname = $1', [role]);
  return String(result.rows[0]?.rolpassword);
}

const verifier = async (password: string) => formatScramVerifier(await createScramVerifier(password));

const ward = await startTestPgward(t, {
  upstream,
  hba: `rules:
  - { type: host, address: all, database: all, user: dave, method: password, allow_cleartext: true, upstream_login: pass }
  - { type: host, address: all, database: all, user: [erin, erin2, frank, ghost], method: scram-sha-256, upstream_login: keys }
  - { type: host, address: all, database: all, user: sam, method: scram-sha-256, upstream_login: same-sam }
  - { type: host, address: all, database: all, user: mona, method: scram-sha-256, upstream_login: same-mona }
  - { type: host, address: all, database: all, user: nopass, method: scram-sha-256, upstream_login: pass }
  - { type: host, address: all, database: all, user: all, method: scram-sha-256 }
`,
  usersFile: `users:
  dave: { scram: "${await verifier('dave pw')}" }
  erin: { scram: "${await upstreamVerifier('erin')}" }
  erin2: { scram: "${await verifier('erin pw')}" }
  sam: { scram: "${await verifier('sam pw')}" }
  mona: { scram: "${await verifier('mona pw')}" }
  nopass: { scram: "${await verifier('nopass pw')}" }
  carol: { scram: "${await verifier('carol pw')}", upstream_login: svc }
`,
  login: '{ mode: same }',
  upstreamExtra: `logins: { svc: { mode: service, user: svc, password: "svc pw" }, pass: { mode: passthrough }, keys: { mode: scram-passthrough }, same-sam: { mode: same, password: "sam upstream pw" }, same-mona: { mode: same, password: "mona upstream pw" } }`,
  extraConfig: `auth_query:
  user: lookup
  password: "lookup pw"
  query: "select usename, passwd from public.pgward_lookup($1)"
  cache_ttl_ms: 0`,
});

async function sessionUser(user: string, password: string): Promise<string> {
  const client = new pg.Client({ host: '127.0.0.1', port: ward.port, user, password, database: 'postgres' });
  await client.connect();
  try {
    return String((await client.query('select session_user as u')).rows[0]?.u);
  } finally {
    await client.end();
  }
}

t.test('same: the client user with the configured password', async (t) => {
  t.equal(await sessionUser('sam', 'sam pw'), 'sam');
  t.equal(await sessionUser('mona', 'mona pw'), 'mona', 'an upstream md5 challenge is answered too');
});

t.test('service: a fixed account, chosen in users.yaml', async (t) => {
  t.equal(await sessionUser('carol', 'carol pw'), 'svc');
});

t.test('passthrough: the cleartext password the client gave', async (t) => {
  t.equal(await sessionUser('dave', 'dave pw'), 'dave');
  await t.rejects(
    sessionUser('nopass', 'nopass pw'),
    {
      code: '28000',
      message: 'pgward cannot log in to the upstream server for this connection',
    },
    'a SCRAM client never hands over its password',
  );
});

t.test(
  'scram-passthrough: the ClientKey from the proof logs in where the verifier is the same',
  async (t) => {
    t.equal(await sessionUser('erin', 'erin pw'), 'erin');
    await t.rejects(
      sessionUser('erin2', 'erin pw'),
      { code: '08006', detail: /different verifier/ },
      'a verifier with another salt upstream cannot be answered',
    );
  },
);

t.test('auth_query finds upstream-only users; scram-passthrough logs them in', async (t) => {
  t.equal(await sessionUser('frank', 'frank pw'), 'frank');
  await t.rejects(sessionUser('frank', 'wrong'), {
    code: '28P01',
    message: 'password authentication failed for user "frank"',
  });
  await t.rejects(
    sessionUser('ghost', 'whatever'),
    { code: '28P01', message: 'password authentication failed for user "ghost"' },
    'a user missing upstream fails like a wrong password',
  );
  const activity = await upstream.query(
    "select count(*)::int as n from pg_stat_activity where usename = 'lookup' and application_name = 'pgward auth_query'",
  );
  t.ok(Number(activity.rows[0]?.n) >= 1, 'the lookups ran as the dedicated lookup user');
});
