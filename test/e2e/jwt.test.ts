/**
 * `method: jwt` end to end: tokens sent as the password by psql and pg, checked by every validator
 * kind against a real IdP (oidc-provider in-process: JWKS, discovery, introspection of opaque
 * tokens) and against keys of this run (a JWKS file, for tokens crafted to fail each check). Key
 * rotation, the IdP going down with keys cached, per-user bindings (CrateDB), ident maps, and the
 * rule that a client learns the class of problem and never sees (nor does the log) its token.
 */

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import pg from 'pg';
import t from 'tap';
import { IMPLEMENTED_FEATURES } from '../../src/auth/registry.ts';
import { loadHbaFile } from '../../src/hba/parse.ts';
import { firstRowOrError, psql } from '../helpers/clients.ts';
import { RESOURCE, startTestIdp } from '../helpers/idp.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const idp = await startTestIdp(t, [
  { id: 'alice', secret: 'alice-secret', claims: { preferred_username: 'alice' } },
  { id: 'bob', secret: 'bob-secret', claims: { preferred_username: 'bob' } },
  { id: 'bigalice', secret: 'big-secret', claims: { preferred_username: 'alice', pad: 'x'.repeat(16_000) } },
]);

// Keys of this run for crafted tokens, published in a JWKS file.
const LOCAL_ISSUER = 'https://issuer.test';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = {
  keys: [
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'local-rsa', alg: 'RS256', use: 'sig' },
    { ...ec.publicKey.export({ format: 'jwk' }), kid: 'local-ec', use: 'sig' },
  ],
};

const now = () => Math.floor(Date.now() / 1000);
interface Craft {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  key?: KeyObject;
  alg?: string;
  kid?: string;
}
/** A token signed with a local key: sub alice, iss LOCAL_ISSUER, aud crate, scope db, valid 10 min. */
function craft({
  claims = {},
  header = {},
  key = rsa.privateKey,
  alg = 'RS256',
  kid = 'local-rsa',
}: Craft = {}) {
  const payload = {
    sub: 'alice',
    iss: LOCAL_ISSUER,
    aud: 'crate',
    scope: 'db',
    iat: now(),
    exp: now() + 600,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload))
    if (value === undefined) delete (payload as Record<string, unknown>)[name];
  return new SignJWT(payload).setProtectedHeader({ alg, kid, ...header }).sign(key);
}

const upstream = await startTestPostgres(t);
for (const role of ['alice', 'bob', 'carol'])
  await upstream.query(`create role ${role} login password '${upstream.password}'`);
const DATABASES = ['v_local', 'v_jwks', 'v_openid', 'v_introspect', 'v_cached', 'v_pem', 'v_mapped', 'v_es'];
for (const database of DATABASES) await upstream.query(`create database ${database}`);

const rule = (database: string, validator: string, extra = '') =>
  `  - { type: hostssl, address: all, database: ${database}, user: all, method: jwt, validator: ${validator}${extra} }`;

const ward = await startTestPgward(t, {
  upstream,
  hba: [
    'maps:',
    '  corp:',
    '    - { system: "/^(.*)@corp\\\\.example$", user: "\\\\1" }',
    'rules:',
    rule('v_local', 'local'),
    rule('v_jwks', 'idp-jwks'),
    rule('v_openid', 'idp-openid'),
    rule('v_introspect', 'idp-introspect'),
    rule('v_cached', 'idp-cached'),
    rule('v_pem', 'idp-pem'),
    rule('v_mapped', 'local', ', map: corp'),
    rule('v_es', 'es-only'),
    '',
  ].join('\n'),
  usersFile: `users:
  carol: { jwt: { validator: local, iss: "${LOCAL_ISSUER}", username: carol-ext, aud: crate } }
`,
  files: { 'local.jwks': JSON.stringify(jwks), 'idp.pem': idp.publicKeyPem() },
  extraConfig: `token_validators:
  local: { kind: jwks_file, file: local.jwks, issuers: ["${LOCAL_ISSUER}"], audiences: [crate], scopes: [db, admin], clock_skew_seconds: 5, max_token_bytes: 4096 }
  es-only: { kind: jwks_file, file: local.jwks, algorithms: [ES256] }
  idp-jwks: { kind: jwks, url: "${idp.jwksUrl}", issuers: ["${idp.issuer}"], audiences: ["${RESOURCE}"], scopes: [db], kid_miss_cooldown_ms: 0, timeout_ms: 1000 }
  idp-openid: { kind: openid, discovery_url: "${idp.discoveryUrl}", audiences: ["${RESOURCE}"], principal_claim: preferred_username }
  idp-introspect: { kind: introspection, discovery_url: "${idp.discoveryUrl}", client_id: ${idp.introspector.id}, client_secret: ${idp.introspector.secret}, principal_claim: preferred_username }
  idp-cached: { kind: introspection, introspection_url: "${idp.introspectionUrl}", client_id: ${idp.introspector.id}, client_secret: ${idp.introspector.secret}, principal_claim: preferred_username, cache_ms: 60000 }
  idp-pem: { kind: pem, file: idp.pem, issuers: ["${idp.issuer}"] }
`,
});

/** Logs in with a token as the password; resolves with session_user or the error. */
function login(user: string, database: string, token: string): Promise<string> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user,
    database,
    password: token,
    ssl: { rejectUnauthorized: false },
  });
  return firstRowOrError(client, 'select session_user::text as who');
}

t.test('psql and pg log in with a JWT as the password', async (t) => {
  const token = await idp.jwt('alice');
  const viaPsql = await psql(
    `host=127.0.0.1 port=${ward.port} dbname=v_jwks user=alice sslmode=require`,
    ['-tAc', 'select session_user'],
    { password: token },
  );
  t.equal(viaPsql.code, 0, viaPsql.stderr);
  t.equal(viaPsql.stdout.trim(), 'alice');
  t.equal(await login('alice', 'v_jwks', token), 'alice');
  const decision = ward.logs.find({ msg: 'auth decision', method: 'jwt', result: 'accepted' }).at(-1);
  t.equal(decision?.identity, 'token principal "alice"');
});

t.test('a 16 KiB token works', async (t) => {
  const token = await idp.jwt('bigalice');
  t.ok(token.length > 16 * 1024, `token of ${token.length} bytes`);
  t.equal(await login('alice', 'v_openid', token), 'alice');
});

t.test('another principal’s token is refused, and the client learns only the class', async (t) => {
  const token = await idp.jwt('bob');
  t.equal(await login('alice', 'v_jwks', token), '28000: token does not match the user');
});

t.test('each check refuses with its class (crafted tokens, JWKS file)', async (t) => {
  const hmacWithPublicKey = await new SignJWT({
    sub: 'alice',
    iss: LOCAL_ISSUER,
    aud: 'crate',
    scope: 'db',
    exp: now() + 600,
  })
    .setProtectedHeader({ alg: 'HS256', kid: 'local-rsa' })
    .sign(new Uint8Array(rsa.publicKey.export({ type: 'spki', format: 'der' })));
  const valid = await craft();
  const [head, body] = valid.split('.');
  const cases: [string, string | Promise<string>, string][] = [
    ['valid', valid, 'alice'],
    ['expired', craft({ claims: { exp: now() - 60 } }), '28000: token expired'],
    ['expired 2 s ago, within the 5 s skew', craft({ claims: { exp: now() - 2 } }), 'alice'],
    ['not yet valid', craft({ claims: { nbf: now() + 600 } }), '28000: token is not yet valid'],
    [
      'issued in the future',
      craft({ claims: { iat: now() + 600 } }),
      '28000: token was issued in the future',
    ],
    ['no exp', craft({ claims: { exp: undefined } }), '28000: token is malformed'],
    ['wrong issuer', craft({ claims: { iss: 'https://evil.test' } }), '28000: token issuer is not accepted'],
    [
      'wrong audience',
      craft({ claims: { aud: ['other', 'another'] } }),
      '28000: token audience is not accepted',
    ],
    ['audience in a list', craft({ claims: { aud: ['other', 'crate'] } }), 'alice'],
    ['missing scope', craft({ claims: { scope: 'read write' } }), '28000: token scope is not accepted'],
    ['scope as scp list', craft({ claims: { scope: undefined, scp: ['x', 'admin'] } }), 'alice'],
    ['no principal', craft({ claims: { sub: undefined } }), '28000: token does not match the user'],
    ['unknown kid', craft({ kid: 'nobody' }), '28000: token signing key is unknown'],
    ['signed by a stranger', craft({ key: stranger.privateKey }), '28000: token signature is invalid'],
    [
      'tampered payload',
      `${head}.${Buffer.from(JSON.stringify({ sub: 'alice', iss: LOCAL_ISSUER, aud: 'crate', scope: 'db', exp: now() + 9999 })).toString('base64url')}.${valid.split('.')[2]}`,
      '28000: token signature is invalid',
    ],
    [
      'header alg differs from the JWK alg',
      craft({ alg: 'PS256' }),
      '28000: token algorithm is not accepted',
    ],
    [
      'alg none',
      `${Buffer.from('{"alg":"none","kid":"local-rsa"}').toString('base64url')}.${body}.`,
      '28000: token is malformed',
    ],
    ['HMAC with the public key as secret', hmacWithPublicKey, '28000: token algorithm is not accepted'],
    ['EC key without alg, ES256', craft({ key: ec.privateKey, alg: 'ES256', kid: 'local-ec' }), 'alice'],
    ['too large', craft({ claims: { pad: 'x'.repeat(5000) } }), '28000: token is too large'],
    ['not a JWT', 'not-a-token', '28000: token is malformed'],
  ];
  for (const [title, token, expected] of cases)
    t.equal(await login('alice', 'v_local', await token), expected, title);
  t.equal(
    await login('alice', 'v_es', valid),
    '28000: token algorithm is not accepted',
    'a validator allowing ES256 only refuses RS256',
  );
});

t.test('neither the client nor the log ever sees the token', async (t) => {
  const token = await craft({ claims: { exp: now() - 60 } });
  t.equal(await login('alice', 'v_local', token), '28000: token expired');
  const logged = JSON.stringify(ward.logs.lines);
  t.notOk(logged.includes(token.split('.')[2] ?? 'x'), 'no signature in the log');
  t.notOk(logged.includes(token.split('.')[1] ?? 'x'), 'no payload in the log');
  const reason = ward.logs.find({ msg: 'auth decision', result: 'rejected', method: 'jwt' }).at(-1)?.reason;
  t.match(String(reason), /^local: exp \d+ is past/, 'the log has the details');
});

t.test('users.yaml bindings: iss, username and aud must match (CrateDB)', async (t) => {
  const carol = (claims: Record<string, unknown>) =>
    craft({ claims: { sub: 'someone', username: 'carol-ext', ...claims } });
  t.equal(await login('carol', 'v_local', await carol({})), 'carol');
  t.equal(
    await login('carol', 'v_local', await carol({ username: 'dave' })),
    '28000: token does not match the user',
  );
  t.equal(await login('carol', 'v_local', await carol({ aud: ['crate', 'x'] })), 'carol');
  const otherAud = await carol({ aud: ['other', 'crate2'] });
  t.equal(await login('carol', 'v_local', otherAud), '28000: token audience is not accepted');
  t.equal(
    await login('carol', 'v_jwks', await idp.jwt('alice')),
    '28000: token does not match the user',
    'another validator',
  );
});

t.test('an ident map binds principals to users', async (t) => {
  t.equal(await login('alice', 'v_mapped', await craft({ claims: { sub: 'alice@corp.example' } })), 'alice');
  t.equal(
    await login('bob', 'v_mapped', await craft({ claims: { sub: 'alice@corp.example' } })),
    '28000: token does not match the user',
  );
});

t.test('OIDC discovery and a PEM key', async (t) => {
  t.equal(await login('alice', 'v_openid', await idp.jwt('alice')), 'alice');
  t.equal(await login('alice', 'v_pem', await idp.jwt('alice')), 'alice');
});

t.test('introspection: opaque tokens, active or not', async (t) => {
  t.equal(await login('alice', 'v_introspect', await idp.opaque('alice')), 'alice');
  t.equal(
    await login('bob', 'v_introspect', await idp.opaque('alice')),
    '28000: token does not match the user',
  );
  t.equal(await login('alice', 'v_introspect', 'made-up-opaque-token'), '28000: token is not active');
});

t.test('introspection answers: asked every time unless cache_ms, and inactive ones never kept', async (t) => {
  const asked = () => idp.hits.get('/token/introspection') ?? 0;
  const token = await idp.opaque('alice');
  let before = asked();
  t.equal(await login('alice', 'v_introspect', token), 'alice');
  t.equal(await login('alice', 'v_introspect', token), 'alice');
  t.equal(asked() - before, 2, 'no cache_ms: every login asks the IdP');
  before = asked();
  t.equal(await login('alice', 'v_cached', token), 'alice');
  t.equal(await login('alice', 'v_cached', token), 'alice');
  t.equal(
    await login('bob', 'v_cached', token),
    '28000: token does not match the user',
    'claims checked on reuse',
  );
  t.equal(asked() - before, 1, 'cache_ms: one question for three logins');
  before = asked();
  t.equal(await login('alice', 'v_cached', 'made-up-opaque-token'), '28000: token is not active');
  t.equal(await login('alice', 'v_cached', 'made-up-opaque-token'), '28000: token is not active');
  t.equal(asked() - before, 2, 'an inactive answer is asked again');
});

t.test('key rotation: a new kid is fetched, old tokens stay valid', async (t) => {
  const before = await idp.jwt('alice');
  t.equal(await login('alice', 'v_jwks', before), 'alice');
  const fetches = idp.hits.get('/jwks') ?? 0;
  await idp.rotate();
  const after = await idp.jwt('alice');
  t.equal(await login('alice', 'v_jwks', after), 'alice', 'signed with the new key');
  t.equal(idp.hits.get('/jwks'), fetches + 1, 'one refetch for the unknown kid');
  t.equal(await login('alice', 'v_jwks', before), 'alice', 'the old key is still published');
  t.equal(idp.hits.get('/jwks'), fetches + 1, 'known kids need no fetch');
});

t.test('IdP down: cached keys keep working, an unknown kid cannot be fetched', async (t) => {
  const token = await idp.jwt('alice');
  t.equal(await login('alice', 'v_jwks', token), 'alice');
  await idp.rotate();
  const unseen = await idp.jwt('alice');
  idp.down();
  t.teardown(() => idp.up());
  t.equal(await login('alice', 'v_jwks', token), 'alice', 'the last good key set is kept');
  t.equal(await login('alice', 'v_jwks', unseen), '28000: token signing key is unknown');
  t.ok(ward.logs.find({ msg: 'JWKS fetch failed; the last good key set stays in use' }).length > 0);
  idp.up();
  t.equal(await login('alice', 'v_jwks', unseen), 'alice', 'fetched once the IdP is back');
});

t.test('jwt needs TLS unless the rule allows cleartext', async (t) => {
  const file = path.join(ward.dir, 'bad-hba.yaml');
  await writeFile(
    file,
    'rules:\n  - { type: host, address: all, database: all, user: all, method: jwt, validator: local }\n',
  );
  t.throws(() => loadHbaFile(file), /allow_cleartext/);
  await writeFile(
    file,
    'rules:\n  - { type: hostssl, address: all, database: all, user: all, method: jwt, validator: nope }\n',
  );
  t.throws(
    () =>
      loadHbaFile(file, { features: IMPLEMENTED_FEATURES, references: { validators: new Set(['local']) } }),
    /no token validator "nope" in pgward.yaml \(token_validators\) \(defined: local\)/,
  );
});
