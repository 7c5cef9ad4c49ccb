/**
 * What a valid token admits (seed 001): external users — no users.yaml entry, no PostgreSQL role of
 * their own — logged in upstream as a service account and switched with `SET ROLE` to the role their
 * token's groups grant from the allow-list (checked with `SELECT current_user` upstream); local users
 * untouched; and end_session_at_token_expiry ending a session with FATAL 28000 `token expired`.
 */

import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import pg from 'pg';
import t from 'tap';
import { firstRowOrError, psql } from '../helpers/clients.ts';
import { postSql } from '../helpers/http-sql.ts';
import { oauthbearer } from '../helpers/oauthbearer-client.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const ISSUER = 'https://issuer.test';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = { keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] };
const now = () => Math.floor(Date.now() / 1000);
const token = (sub: string, claims: Record<string, unknown> = {}) =>
  new SignJWT({ sub, iss: ISSUER, iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(rsa.privateKey);

const upstream = await startTestPostgres(t);
const SERVICE_PASSWORD = 'service-secret';
for (const sql of [
  `create role svc login noinherit password '${SERVICE_PASSWORD}'`,
  'create role analyst nologin',
  'create role engineer nologin',
  'create role auditor nologin',
  'grant analyst, engineer to svc',
  `create role alice login password '${upstream.password}'`,
  `create role dave login password '${upstream.password}'`,
  `create role carol login password '${upstream.password}'`,
])
  await upstream.query(sql);
for (const database of ['ext', 'ext_direct', 'ext_oauth', 'ext_same', 'short', 'short_skew', 'long'])
  await upstream.query(`create database ${database}`);
const owner = new pg.Client({
  host: upstream.host,
  port: upstream.port,
  user: upstream.user,
  password: upstream.password,
  database: 'ext',
});
await owner.connect();
for (const sql of [
  'create table report (n int)',
  'insert into report values (42)',
  'grant select on report to analyst',
])
  await owner.query(sql);
await owner.end();

const jwtRule = (database: string, validator: string, extra = '') =>
  `  - { type: hostssl, address: all, database: ${database}, user: all, method: jwt, validator: ${validator}${extra} }`;
const ward = await startTestPgward(t, {
  upstream,
  hba: [
    'rules:',
    jwtRule('ext', 'corp', ', upstream_login: service'),
    jwtRule('ext_direct', 'direct', ', upstream_login: service'),
    `  - { type: hostssl, address: all, database: ext_oauth, user: all, method: oauth, validator: corp, issuer: "${ISSUER}", scope: db, upstream_login: service }`,
    jwtRule('ext_same', 'corp'),
    jwtRule('short', 'expiring'),
    jwtRule('short_skew', 'expiring-skew'),
    jwtRule('long', 'lasting'),
    '  - { type: host, protocol: http, address: all, database: ext, user: all, method: jwt, validator: corp, upstream_login: service, allow_cleartext: true }',
    `  - { type: host, protocol: http, address: all, database: ext_oauth, user: all, method: oauth, validator: corp, issuer: "${ISSUER}", scope: db, upstream_login: service, allow_cleartext: true }`,
    '  - { type: host, protocol: http, address: all, database: ext_same, user: all, method: jwt, validator: corp, allow_cleartext: true }',
    '  - { type: host, protocol: http, address: all, database: postgres, user: all, method: password, allow_cleartext: true }',
    '',
  ].join('\n'),
  usersFile: `users:\n  alice: {}\n  carol: { jwt: { validator: corp, iss: "${ISSUER}", username: carol-ext } }\n`,
  http: true,
  upstreamExtra: `logins:\n    service: { mode: service, user: svc, password: ${SERVICE_PASSWORD} }`,
  files: { 'keys.jwks': JSON.stringify(jwks) },
  extraConfig: `token_validators:
  corp:
    kind: jwks_file
    file: keys.jwks
    issuers: ["${ISSUER}"]
    external_users:
      roles: [analyst, engineer, auditor]
      role_claim: groups
      role_map: { corp-analysts: analyst, corp-eng: engineer, corp-audit: auditor }
  direct:
    kind: jwks_file
    file: keys.jwks
    external_users: { roles: [analyst], role_claim: roles }
  expiring: { kind: jwks_file, file: keys.jwks, end_session_at_token_expiry: true, clock_skew_seconds: 0 }
  expiring-skew: { kind: jwks_file, file: keys.jwks, end_session_at_token_expiry: true, clock_skew_seconds: 1 }
  lasting: { kind: jwks_file, file: keys.jwks, clock_skew_seconds: 0 }
`,
});

function client(user: string, database: string, password: string, options?: string): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user,
    database,
    password,
    ssl: { rejectUnauthorized: false },
    ...(options === undefined ? {} : { options }),
  });
}

/** Logs in and answers `current_user/session_user`, or the error. */
function whoAmI(user: string, database: string, password: string, options?: string): Promise<string> {
  return firstRowOrError(
    client(user, database, password, options),
    'select current_user::text as cur, session_user::text as ses',
  );
}

t.test('an external user runs as the role its groups grant, on a service login', async (t) => {
  const both = await token('dave', { groups: ['corp-eng', 'corp-analysts', 'unrelated'] });
  t.equal(await whoAmI('dave', 'ext', both), 'analyst/svc', 'the first role of the allow-list wins');
  t.equal(
    await whoAmI('dave', 'ext', await token('dave', { groups: 'corp-eng' })),
    'engineer/svc',
    'a single string',
  );
  const viaPsql = await psql(
    `host=127.0.0.1 port=${ward.port} dbname=ext user=erin sslmode=require`,
    ['-tAc', "select current_user || '/' || session_user; select n from public.report"],
    { password: await token('erin', { groups: ['corp-analysts'] }) },
  );
  t.equal(viaPsql.code, 0, viaPsql.stderr);
  t.equal(
    viaPsql.stdout.trim(),
    'analyst/svc\n42',
    'the role’s privileges apply (svc alone has none: NOINHERIT)',
  );
  const line = ward.logs.find({ msg: 'auth decision', result: 'accepted', user: 'erin' }).at(-1);
  t.match(String(line?.identity), /external user with role "analyst"/);
});

t.test('over OAUTHBEARER too', async (t) => {
  const login = await oauthbearer(
    { port: ward.port, user: 'frank', database: 'ext_oauth' },
    `Bearer ${await token('frank', { groups: ['corp-eng'] })}`,
  );
  t.ok(login.ok);
  if (!login.ok) return;
  t.same(await login.client.query('select current_user'), ['engineer']);
  login.client.end();
});

t.test('a token granting no allowed role is refused', async (t) => {
  const refused = '28000: token does not match the user';
  t.equal(
    await whoAmI('dave', 'ext', await token('dave', { groups: ['corp-sales'] })),
    refused,
    'unmapped group',
  );
  t.equal(await whoAmI('dave', 'ext', await token('dave')), refused, 'no groups claim');
  t.equal(
    await whoAmI('dave', 'ext', await token('dave', { groups: ['analyst'] })),
    refused,
    'with a role_map, a claim naming an allowed role directly does not count',
  );
  t.equal(
    await whoAmI('dave', 'ext_direct', await token('dave', { roles: ['postgres'] })),
    refused,
    'a role outside the allow-list is never taken, even when the claim names it',
  );
  t.equal(await whoAmI('dave', 'ext_direct', await token('dave', { roles: ['analyst'] })), 'analyst/svc');
  t.equal(
    await whoAmI('dave', 'ext', await token('mallory', { groups: ['corp-eng'] })),
    '28000: token does not match the user',
    'the principal must still be the user',
  );
});

t.test('an upstream refusal of the role ends the login with its error', async (t) => {
  t.equal(
    await whoAmI('dave', 'ext', await token('dave', { groups: ['corp-audit'] })),
    '42501: permission denied to set role "auditor"',
  );
});

t.test('an external user cannot choose its role with startup parameters', async (t) => {
  const answer = await whoAmI(
    'dave',
    'ext',
    await token('dave', { groups: ['corp-analysts'] }),
    '-c role=engineer',
  );
  t.equal(answer, '42501: startup parameter "options" is not accepted from an external user');
});

t.test('an external user needs a service login upstream', async (t) => {
  t.equal(
    await whoAmI('dave', 'ext_same', await token('dave', { groups: ['corp-eng'] })),
    '28000: pgward cannot log in to the upstream server for this connection',
    'a "same" login would log in under the principal’s name',
  );
  const line = ward.logs.find({ msg: 'connection refused', sqlstate: '28000' }).at(-1);
  t.match(String(line?.error), /mode "same", not "service"/);
  const warnings = ward.logs.lines.map((l) => String(l.msg)).filter((m) => m.includes('external users of'));
  t.same(
    warnings.map((m) => m.replace(/^.*hba\.yaml:/, 'hba.yaml:')),
    [
      'hba.yaml:5:5: rules[3]: external users of validator "corp" cannot log in through rule "rule 4": the default upstream login has mode "same"; give the rule a "service" upstream_login',
      'hba.yaml:11:5: rules[9]: external users of validator "corp" cannot log in through rule "rule 10": the default upstream login has mode "same"; give the rule a "service" upstream_login',
    ],
    'and the rule was flagged when hba.yaml loaded',
  );
});

t.test('a local user is not an external user: no SET ROLE', async (t) => {
  t.equal(await whoAmI('alice', 'ext_same', await token('alice', { groups: ['corp-eng'] })), 'alice/alice');
});

t.test('end_session_at_token_expiry ends the session with FATAL 28000 token expired', async (t) => {
  const exp = now() + 3;
  const idle = client('dave', 'short', await token('dave', { exp }));
  const busy = client('dave', 'short', await token('dave', { exp }));
  const lasting = client('dave', 'long', await token('dave', { exp }));
  const skewed = client('dave', 'short_skew', await token('dave', { exp }));
  await Promise.all([idle.connect(), busy.connect(), lasting.connect(), skewed.connect()]);
  const skewedEnded = new Promise<number>((resolve) => skewed.once('error', () => resolve(Date.now())));
  skewed.on('error', () => {});
  type Failure = { code?: string; message: string };
  const idleEnded = new Promise<Failure>((resolve) => idle.once('error', resolve));
  idle.on('error', () => {}); // then "Connection terminated", once the socket closes
  busy.on('error', () => {});
  const running = busy.query('select pg_sleep(30)').then(
    () => null,
    (error: Failure) => error,
  );
  const idleError = await idleEnded;
  t.equal(`${idleError.code}: ${idleError.message}`, '28000: token expired', 'an idle session');
  t.ok(Date.now() >= exp * 1000, 'not before exp');
  t.ok(Date.now() < exp * 1000 + 2000, 'promptly after exp');
  const busyError = await running;
  t.equal(
    `${busyError?.code}: ${busyError?.message}`,
    '28000: token expired',
    'a session running a statement',
  );
  const line = await ward.logs.waitFor({ msg: 'token expired: ending the session' });
  t.ok(line.expiredAt);
  t.ok(
    (await skewedEnded) >= exp * 1000 + 1000,
    'a token good for clock_skew_seconds past exp keeps its session that long',
  );
  const rows = await lasting.query('select 1 as one');
  t.equal(rows.rows[0].one, 1, 'without the option, the session outlives its token');
  await lasting.end();
  await idle.end().catch(() => {});
  await busy.end().catch(() => {});
});

t.test('over HTTP: a Bearer token for jwt and oauth rules', async (t) => {
  const http = { port: ward.httpPort ?? 0 };
  const who = { stmt: "select current_user || '/' || session_user as who" };
  const ask = async (database: string, bearer: string, user?: string) => {
    const query = new URLSearchParams({ database, ...(user === undefined ? {} : { user }) });
    const response = await postSql(http, who, { authorization: `Bearer ${bearer}`, path: `/sql?${query}` });
    return (
      response.body.rows?.[0]?.[0] ??
      `${response.status} ${response.body.error?.code}: ${response.body.error?.message}`
    );
  };
  const dave = await token('dave', { groups: ['corp-analysts'] });
  t.equal(
    await ask('ext', dave),
    'analyst/svc',
    'the user is the token’s sub; an external user takes its role',
  );
  t.equal(await ask('ext', dave, 'dave'), 'analyst/svc', '?user= names the user');
  t.equal(
    await ask('ext', dave, 'erin'),
    '401 28000: token does not match the user',
    'and the token must be that user’s',
  );
  const carol = await token('someone-else', { username: 'carol-ext' });
  t.equal(
    await ask('ext_same', carol),
    'carol/carol',
    'CrateDB: the user whose binding names iss and username',
  );
  t.equal(
    await ask('ext_oauth', await token('frank', { groups: ['corp-eng'] })),
    'engineer/svc',
    'an oauth rule',
  );
  const expired = await postSql(http, who, {
    authorization: `Bearer ${await token('dave', { exp: now() - 120, groups: ['corp-analysts'] })}`,
    path: '/sql?database=ext',
  });
  t.equal(expired.status, 401);
  t.same(expired.body.error, { code: '28000', message: 'token expired' });
  t.equal(expired.headers['www-authenticate'], 'Bearer realm="pgward", error="invalid_token"');
  t.equal(
    await ask('postgres', dave),
    '401 28000: method "password" of the matching rule cannot use a Bearer token',
  );
  const unusable = await postSql(http, who, {
    authorization: `Bearer ${dave}`,
    path: '/sql?database=postgres',
  });
  t.equal(
    unusable.headers['www-authenticate'],
    'Bearer realm="pgward"',
    'no invalid_token when the token is not at fault',
  );
  t.equal(await ask('ext', dave, 'dave\0x'), '400 22023: the user name must not contain a NUL character');
  t.equal(
    await ask('ext', await token('dave\0user\0postgres', { groups: ['corp-analysts'] })),
    '400 22023: the user name must not contain a NUL character',
    'nor a sub with a NUL',
  );
  const opaque = await postSql(http, who, {
    authorization: 'Bearer opaque-token',
    path: '/sql?database=ext',
  });
  t.equal(opaque.status, 401);
  t.equal(opaque.body.error?.message, 'no user name given');
  t.match(opaque.body.error?.hint, /\?user=/);
});
