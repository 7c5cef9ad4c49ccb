/**
 * `method: oauth` end to end: SASL OAUTHBEARER as PostgreSQL 18 speaks it, driven by a test client in
 * libpq 18's pattern (discovery, then a second connection with a token from the IdP it discovered) and
 * pgx's (token first), against a real IdP (oidc-provider in-process) and crafted tokens. Every
 * structural error of the exchange, the error challenge for bad tokens, discovery not counted as a
 * failure, and psql 15, pg and postgres.js (which cannot do OAUTHBEARER) failing cleanly.
 */

import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import pg from 'pg';
import postgres from 'postgres';
import t from 'tap';
import { psql } from '../helpers/clients.ts';
import { RESOURCE, startTestIdp } from '../helpers/idp.ts';
import {
  clientResponse,
  libpqLogin,
  type Message,
  oauthbearer,
  saslInitialResponse,
  saslResponse,
  type Target,
  WireClient,
} from '../helpers/oauthbearer-client.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const CLIENTS = {
  alice: 'alice-secret',
  bob: 'bob-secret',
  bigalice: 'big-secret',
} as const;
const idp = await startTestIdp(t, [
  { id: 'alice', secret: CLIENTS.alice },
  { id: 'bob', secret: CLIENTS.bob },
  { id: 'bigalice', secret: CLIENTS.bigalice, claims: { pad: 'x'.repeat(16_000) } },
]);

const LOCAL_ISSUER = 'https://issuer.test';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = { keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] };
const now = () => Math.floor(Date.now() / 1000);
const craft = (claims: Record<string, unknown> = {}) =>
  new SignJWT({ sub: 'alice', iss: LOCAL_ISSUER, iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(rsa.privateKey);

const upstream = await startTestPostgres(t);
for (const role of ['alice', 'bob', 'bigalice'])
  await upstream.query(`create role ${role} login password '${upstream.password}'`);
for (const database of ['o_idp', 'o_local', 'o_plain']) await upstream.query(`create database ${database}`);

const ward = await startTestPgward(t, {
  upstream,
  hba: `rules:
  - { type: hostssl, address: all, database: o_idp, user: all, method: oauth, validator: idp, issuer: "${idp.issuer}", scope: db }
  - { type: hostssl, address: all, database: o_local, user: all, method: oauth, validator: local, issuer: "${LOCAL_ISSUER}/.well-known/oauth-authorization-server", scope: "openid db" }
  - { type: host, address: all, database: o_plain, user: all, method: oauth, validator: local, issuer: "${LOCAL_ISSUER}", scope: db, allow_cleartext: true }
`,
  files: { 'local.jwks': JSON.stringify(jwks) },
  extraConfig: `token_validators:
  idp: { kind: openid, discovery_url: "${idp.discoveryUrl}", audiences: ["${RESOURCE}"], scopes: [db] }
  local: { kind: jwks_file, file: local.jwks, issuers: ["${LOCAL_ISSUER}"] }
`,
});

const target = (user: string, database: string, tls = true): Target => ({
  port: ward.port,
  user,
  database,
  tls,
});

/** The OAuth flow libpq runs after discovery: here client_credentials at the discovered endpoint. */
function flowFor(client: keyof typeof CLIENTS) {
  return {
    issuer: idp.issuer,
    unsafeHttp: true,
    async getToken(tokenEndpoint: string, scope: string) {
      const response = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${client}:${CLIENTS[client]}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: RESOURCE }),
      });
      const answer = (await response.json()) as { access_token: string };
      return answer.access_token;
    },
  };
}

const errorOf = (message: Message | null) => (message ? `${message.code}: ${message.message}` : 'no error');

t.test('libpq 18 pattern: discovery, then the token from the discovered IdP', async (t) => {
  const discovery = await oauthbearer(target('alice', 'o_idp'), '');
  t.notOk(discovery.ok);
  if (discovery.ok) return;
  t.same(discovery.messages, ['authenticationSASL', 'authenticationSASLContinue', 'error']);
  t.same(discovery.challenge, {
    status: 'invalid_token',
    'openid-configuration': `${idp.issuer}/.well-known/openid-configuration`,
    scope: 'db',
  });
  t.equal(errorOf(discovery.error), '28000: OAuth bearer authentication failed for user "alice"');
  t.equal(discovery.error?.severity, 'FATAL');

  const login = await libpqLogin(target('alice', 'o_idp'), flowFor('alice'));
  t.ok(login.ok, login.ok ? '' : errorOf(login.error));
  if (!login.ok) return;
  t.same(login.messages, ['authenticationSASL', 'authenticationOk', 'readyForQuery'], 'never SASLFinal');
  t.same(await login.client.query('select current_user'), ['alice']);
  login.client.end();
});

t.test('the advertised SASL mechanisms are OAUTHBEARER alone', async (t) => {
  const client = await WireClient.connect(target('alice', 'o_idp'));
  const first = await client.nextSignificant();
  t.equal(first.name, 'authenticationSASL');
  t.same(first.mechanisms, ['OAUTHBEARER']);
  client.destroy();
});

t.test('pgx pattern: the token in the first message', async (t) => {
  const token = await idp.jwt('bob');
  const login = await oauthbearer(target('bob', 'o_idp'), `Bearer ${token}`);
  t.ok(login.ok);
  if (!login.ok) return;
  t.same(await login.client.query('select current_user'), ['bob']);
  login.client.end();
  const lower = await oauthbearer(target('bob', 'o_idp'), `bEaReR    ${token}`);
  t.ok(lower.ok, 'the scheme is case-insensitive and spaces after it are skipped');
  if (lower.ok) lower.client.end();
});

t.test('a 16 KiB token fits in one OAUTHBEARER message', async (t) => {
  const token = await idp.jwt('bigalice');
  t.ok(token.length > 16_384);
  const login = await oauthbearer(target('bigalice', 'o_idp'), `Bearer ${token}`);
  t.ok(login.ok, login.ok ? '' : errorOf(login.error));
  if (login.ok) login.client.end();
});

t.test('without an initial response the server asks for it with an empty challenge', async (t) => {
  const client = await WireClient.connect(target('alice', 'o_local'));
  t.equal((await client.nextSignificant()).name, 'authenticationSASL');
  client.send(saslInitialResponse('OAUTHBEARER', null));
  const empty = await client.nextSignificant();
  t.equal(empty.name, 'authenticationSASLContinue');
  t.equal(String(empty.data), '');
  client.send(saslResponse(clientResponse(`Bearer ${await craft()}`)));
  t.equal((await client.nextSignificant()).name, 'authenticationOk');
  t.equal((await client.nextSignificant()).name, 'readyForQuery');
  client.end();
});

t.test('an issuer given as a discovery URL is advertised as is', async (t) => {
  const discovery = await oauthbearer(target('alice', 'o_local'), '');
  t.same(discovery.ok ? null : discovery.challenge, {
    status: 'invalid_token',
    'openid-configuration': `${LOCAL_ISSUER}/.well-known/oauth-authorization-server`,
    scope: 'openid db',
  });
});

t.test('a bad token gets the same challenge, then FATAL 28000 naming the class only', async (t) => {
  const cases: [string, string, string][] = [
    ['expired', `Bearer ${await craft({ exp: now() - 120 })}`, 'token expired'],
    ['wrong issuer', `Bearer ${await craft({ iss: 'https://evil.test' })}`, 'token issuer is not accepted'],
    ['another user', `Bearer ${await craft({ sub: 'bob' })}`, 'token does not match the user'],
    ['not a JWT', 'Bearer abc.def', 'token is malformed'],
    ['not Bearer', 'Basic YWxpY2U6eA==', 'token is malformed'],
    ['empty token', 'Bearer    ', 'token is malformed'],
    ['not b64token', 'Bearer abc def', 'token is malformed'],
  ];
  for (const [name, auth, message] of cases) {
    const outcome = await oauthbearer(target('alice', 'o_local'), auth);
    t.notOk(outcome.ok, name);
    if (outcome.ok) continue;
    t.same(outcome.messages, ['authenticationSASL', 'authenticationSASLContinue', 'error'], name);
    t.same(
      outcome.challenge,
      {
        status: 'invalid_token',
        'openid-configuration': `${LOCAL_ISSUER}/.well-known/oauth-authorization-server`,
        scope: 'openid db',
      },
      `${name}: no details in the challenge`,
    );
    t.equal(errorOf(outcome.error), `28000: ${message}`, name);
  }
  const logged = JSON.stringify(ward.logs.lines);
  t.notOk(logged.includes('YWxpY2U6eA'), 'the log never has the credentials');
});

t.test(
  'structural errors are FATAL 08P01 malformed OAUTHBEARER message, with PostgreSQL details',
  async (t) => {
    const cases: [string, Buffer | string, string][] = [
      [
        'channel binding',
        'p=tls-server-end-point,,\x01auth=\x01\x01',
        'The server does not support channel binding for OAuth, but the client message includes channel binding data.',
      ],
      ['unknown flag', 'x,,\x01auth=\x01\x01', `Unexpected channel-binding flag "'x'".`],
      ['no comma', 'n;,\x01auth=\x01\x01', `Comma expected, but found character "';'".`],
      ['attribute', 'n,b=x,\x01auth=\x01\x01', `Unexpected attribute "'b'" in client-first-message.`],
      ['no kvsep', 'n,,auth=\x01\x01', `Key-value separator expected, but found character "'a'".`],
      ['no auth', 'n,,\x01host=db\x01\x01', 'Message does not contain an auth value.'],
      ['two auths', 'n,,\x01auth=\x01auth=\x01\x01', 'Message contains multiple auth values.'],
      ['unterminated', 'n,,\x01auth=Bearer x', 'Message contains an unterminated key/value pair.'],
      ['no final', 'n,,\x01auth=\x01', 'Message did not contain a final terminator.'],
      ['no value', 'n,,\x01auth\x01\x01', 'Message contains a key without a value.'],
      ['empty key', 'n,,\x01=x\x01auth=\x01\x01', 'Message contains an empty key name.'],
      ['bad key', 'n,,\x01au-th=x\x01auth=\x01\x01', 'Message contains an invalid key name.'],
      ['bad value', 'n,,\x01auth=\x7f\x01\x01', 'Message contains an invalid value.'],
      [
        'trailing',
        'n,,\x01auth=\x01\x01extra',
        'Message contains additional data after the final terminator.',
      ],
      ['empty', '', 'The message is empty.'],
      ['NUL', 'n,,\x01auth=\0\x01\x01', 'Message length does not match input length.'],
    ];
    for (const [name, data, detail] of cases) {
      const client = await WireClient.connect(target('alice', 'o_local'));
      await client.nextSignificant();
      client.send(saslInitialResponse('OAUTHBEARER', data));
      const error = await client.nextSignificant();
      t.equal(errorOf(error), '08P01: malformed OAUTHBEARER message', name);
      t.equal(error.detail, detail, name);
      t.equal((await client.next()).name, 'closed', `${name}: connection closed`);
    }
  },
);

t.test('an authorization identity is refused (0A000), as in PostgreSQL', async (t) => {
  const client = await WireClient.connect(target('alice', 'o_local'));
  await client.nextSignificant();
  client.send(saslInitialResponse('OAUTHBEARER', 'n,a=bob,\x01auth=\x01\x01'));
  t.equal(
    errorOf(await client.nextSignificant()),
    '0A000: client uses authorization identity, but it is not supported',
  );
  client.destroy();
});

t.test('the answer to the error challenge must be one kvsep', async (t) => {
  const client = await WireClient.connect(target('alice', 'o_local'));
  await client.nextSignificant();
  client.send(saslInitialResponse('OAUTHBEARER', clientResponse('')));
  t.equal((await client.nextSignificant()).name, 'authenticationSASLContinue');
  client.send(saslResponse('\x01\x01'));
  const error = await client.nextSignificant();
  t.equal(errorOf(error), '08P01: malformed OAUTHBEARER message');
  t.equal(error.detail, 'Client did not send a kvsep response.');
});

t.test('messages over 65535 bytes are a protocol violation', async (t) => {
  const client = await WireClient.connect(target('alice', 'o_local'));
  await client.nextSignificant();
  client.send(saslInitialResponse('OAUTHBEARER', clientResponse(`Bearer ${'a'.repeat(65_536)}`)));
  const error = await client.nextSignificant();
  t.equal(error.code, '08P01');
  t.equal((await client.next()).name, 'closed');
});

t.test('another SASL mechanism is refused', async (t) => {
  const client = await WireClient.connect(target('alice', 'o_local'));
  await client.nextSignificant();
  client.send(saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'));
  t.equal(
    errorOf(await client.nextSignificant()),
    '08P01: client selected an invalid SASL authentication mechanism',
  );
});

t.test('discovery is logged as discovery and never counted as a failed login', async (t) => {
  const metrics = ward.pgward.runtime.metrics;
  const failed = metrics.authCount('oauth', 'failed');
  const discoveries = metrics.authCount('oauth', 'discovery');
  for (let i = 0; i < 12; i++) await oauthbearer(target('bob', 'o_local'), '');
  // A client that hangs up instead of sending the kvsep.
  const client = await WireClient.connect(target('bob', 'o_local'));
  await client.nextSignificant();
  client.send(saslInitialResponse('OAUTHBEARER', clientResponse('')));
  t.equal((await client.nextSignificant()).name, 'authenticationSASLContinue');
  client.destroy();
  const gone = await ward.logs.waitFor({ msg: 'auth decision', result: 'discovery', clientGone: true });
  t.equal(gone.reason, 'issuer discovery requested');
  t.equal(metrics.authCount('oauth', 'discovery'), discoveries + 13);
  t.equal(metrics.authCount('oauth', 'failed'), failed, 'no failure counted');
  t.same(
    ward.logs.find({ msg: 'repeated authentication failures: delaying the answer', user: 'bob' }),
    [],
    'never delayed',
  );
  const login = await oauthbearer(target('bob', 'o_local'), `Bearer ${await craft({ sub: 'bob' })}`);
  t.ok(login.ok, 'a login right after many discoveries goes through');
  if (login.ok) login.client.end();
});

t.test('oauth works without TLS only where the rule allows cleartext', async (t) => {
  const login = await oauthbearer(target('alice', 'o_plain', false), `Bearer ${await craft()}`);
  t.ok(login.ok);
  if (login.ok) login.client.end();
});

t.test('clients without OAUTHBEARER fail cleanly', async (t) => {
  t.test('psql 15', async (t) => {
    const result = await psql(
      `host=127.0.0.1 port=${ward.port} dbname=o_idp user=alice sslmode=require`,
      ['-c', 'select 1'],
      {
        password: 'x',
      },
    );
    t.not(result.code, 0);
    t.match(result.stderr, /none of the server's SASL authentication mechanisms are supported/);
  });
  t.test('pg', async (t) => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: ward.port,
      user: 'alice',
      database: 'o_idp',
      password: 'x',
      ssl: { rejectUnauthorized: false },
      connectionTimeoutMillis: 5000,
    });
    await t.rejects(client.connect(), /SASL: Only mechanism\(s\) SCRAM-SHA-256 are supported/);
    await client.end().catch(() => {});
  });
  t.test('postgres.js', async (t) => {
    const sql = postgres({
      host: '127.0.0.1',
      port: ward.port,
      user: 'alice',
      password: 'x',
      database: 'o_idp',
      ssl: { rejectUnauthorized: false },
      max: 1,
      connect_timeout: 5,
    });
    await t.rejects(sql`select 1`, {
      code: '08P01',
      message: 'client selected an invalid SASL authentication mechanism',
    });
    await sql.end({ timeout: 1 });
  });
});

t.test('a timeout while the error challenge waits is no discovery and no hang-up', async (t) => {
  const hasty = await startTestPgward(t, {
    upstream,
    hba: `rules:\n  - { type: hostssl, address: all, database: all, user: all, method: oauth, validator: local, issuer: "${LOCAL_ISSUER}", scope: db }\n`,
    files: { 'local.jwks': JSON.stringify(jwks) },
    extraConfig: `token_validators:\n  local: { kind: jwks_file, file: local.jwks }\n`,
    limits: { auth_timeout_ms: 500 },
  });
  const client = await WireClient.connect({ port: hasty.port, user: 'alice', database: 'o_local' });
  await client.nextSignificant();
  client.send(saslInitialResponse('OAUTHBEARER', clientResponse('')));
  t.equal((await client.nextSignificant()).name, 'authenticationSASLContinue');
  t.equal(errorOf(await client.nextSignificant()), '57014: canceling authentication due to timeout');
  t.same(hasty.logs.find({ msg: 'auth decision', result: 'discovery' }), [], 'not logged as a discovery');
  t.equal(hasty.pgward.runtime.metrics.authCount('oauth', 'discovery'), 0);
  client.destroy();
});
