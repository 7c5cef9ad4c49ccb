import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parsePgwardConfig } from '../../../src/config/pgward-config.ts';
import { ConfigError } from '../../../src/errors/config-error.ts';
import { checkClaims } from '../../../src/tokens/claims.ts';

const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-validators-'));
const file = path.join(dir, 'pgward.yaml');
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
await writeFile(path.join(dir, 'public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
await writeFile(path.join(dir, 'private.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));

const parse = (validators: string) =>
  parsePgwardConfig(file, `upstream: { host: db }\ntoken_validators:\n${validators}`);
function problems(validators: string): string[] {
  try {
    parse(validators);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((problem) => problem.message);
  }
}

t.test('azure derives issuer, JWKS URL and audience from tenant and client ids', async (t) => {
  const [azure] = parse(
    '  entra: { kind: azure, tenant_id: my-tenant, client_id: app-123 }\n',
  ).tokenValidators;
  t.same(azure?.source, {
    kind: 'jwks',
    url: 'https://login.microsoftonline.com/my-tenant/discovery/v2.0/keys',
  });
  t.same(azure?.issuers, ['https://login.microsoftonline.com/my-tenant/v2.0']);
  t.same(azure?.audiences, ['app-123']);
  t.equal(azure?.preset, 'azure');
});

t.test('defaults and per-kind keys', async (t) => {
  const [v] = parse('  corp: { kind: jwks, url: "https://idp.example/jwks" }\n').tokenValidators;
  t.match(v, {
    principalClaim: 'sub',
    clockSkewSeconds: 60,
    requireExp: true,
    maxTokenBytes: 32768,
    issuers: null,
    audiences: null,
    scopes: null,
  });
  t.notOk(v?.algorithms.some((alg) => alg.startsWith('HS')));
  t.match(problems('  corp: { kind: pem, file: public.pem, url: "https://x" }\n'), [/unknown key "url"/]);
  t.match(problems('  corp: { kind: jwks }\n'), [/missing required key "url"/]);
  t.match(problems('  corp: { kind: introspection, client_id: a, client_secret: b }\n'), [
    /needs "discovery_url" or "introspection_url"/,
  ]);
  t.match(problems('  corp: { kind: magic }\n'), [
    /must be one of jwks, jwks_file, pem, openid, introspection, azure/,
  ]);
});

t.test('introspection: discovery wins over the endpoint (Vertica)', async (t) => {
  const [v] = parse(
    '  idp: { kind: introspection, discovery_url: "https://idp/d", introspection_url: "https://idp/i", client_id: a, client_secret: b }\n',
  ).tokenValidators;
  t.same(v?.source, {
    kind: 'introspection',
    endpoint: { discoveryUrl: 'https://idp/d' },
    clientId: 'a',
    clientSecret: 'b',
    cacheMs: 0,
  });
});

t.test('none, HMAC and private keys are refused where they are written', async (t) => {
  t.match(problems('  a: { kind: jwks, url: "https://x/j", algorithms: [RS256, HS256, none] }\n'), [
    /"HS256" is not accepted: HMAC would turn a public key into a shared secret/,
    /"none" is not accepted: unsigned tokens are never accepted/,
  ]);
  t.match(problems('  a: { kind: pem, file: private.pem }\n'), [/holds a private key/]);
  t.match(problems('  a: { kind: pem, file: missing.pem }\n'), [/cannot read a public key/]);
  t.match(problems('  a: { kind: jwks, url: "https://x/j", scopes: [] }\n'), [
    /an empty list accepts nothing/,
  ]);
});

t.test('claim checks', async (t) => {
  const policy = {
    issuers: ['i'],
    audiences: ['a'],
    scopes: ['db'],
    principalClaim: 'email',
    clockSkewSeconds: 10,
    requireExp: true,
  };
  const base = { iss: 'i', aud: 'a', scope: 'db x', email: 'e@x', exp: 1000 };
  t.match(checkClaims(base, policy, 500), {
    ok: true,
    token: { principal: 'e@x', expiresAt: new Date(1_000_000) },
  });
  t.match(checkClaims(base, policy, 1009), { ok: true }, 'within the skew');
  t.match(checkClaims(base, policy, 1010), { ok: false, problem: 'expired' });
  t.match(checkClaims({ ...base, exp: '1000' }, policy, 500), { ok: false, problem: 'malformed' });
  t.match(checkClaims({ ...base, exp: undefined }, { ...policy, requireExp: false }, 500), {
    ok: true,
    token: { expiresAt: null },
  });
  t.match(checkClaims({ ...base, scope: 'dbx' }, policy, 500), { ok: false, problem: 'scope' });
  t.match(checkClaims({ ...base, email: '' }, policy, 500), { ok: false, problem: 'principal' });
  t.match(checkClaims({ ...base, iss: undefined }, policy, 500), { ok: false, problem: 'issuer' });
});

t.test('external_users and end_session_at_token_expiry', async (t) => {
  const [v] = parse(
    '  corp: { kind: pem, file: public.pem, end_session_at_token_expiry: true, external_users: { roles: [analyst, engineer], role_map: { corp-eng: engineer } } }\n',
  ).tokenValidators;
  t.same(v?.externalUsers, {
    roles: ['analyst', 'engineer'],
    roleClaim: 'groups',
    roleMap: { 'corp-eng': 'engineer' },
  });
  t.equal(v?.endSessionAtExpiry, true);
  const [plain] = parse('  corp: { kind: pem, file: public.pem }\n').tokenValidators;
  t.equal(plain?.externalUsers, null);
  t.equal(plain?.endSessionAtExpiry, false);
  t.same(
    problems(
      '  corp: { kind: pem, file: public.pem, external_users: { roles: [a], role_map: { g: postgres } } }\n',
    ),
    ['role "postgres" is not in external_users.roles'],
  );
  t.same(problems('  corp: { kind: pem, file: public.pem, external_users: { roles: [] } }\n'), [
    'no role: nobody could log in',
  ]);
  t.same(problems('  corp: { kind: pem, file: public.pem, external_users: { role_claim: groups } }\n'), [
    'missing required key "roles"',
  ]);
  t.match(
    problems(`  corp: { kind: pem, file: public.pem, external_users: { roles: ["${'r'.repeat(64)}"] } }\n`),
    [/is not a role name \(1 to 63 bytes, no NUL\)/],
  );
  t.match(problems('  corp: { kind: pem, file: public.pem, external_users: { roles: [a], role: x } }\n'), [
    /unknown key "role"/,
  ]);
});

t.test('introspection cache_ms: off by default, bounded', async (t) => {
  const intro = (extra: string) =>
    `  i: { kind: introspection, introspection_url: "https://idp/i", client_id: a, client_secret: b${extra} }\n`;
  const [off] = parse(intro('')).tokenValidators;
  t.match(off?.source, { kind: 'introspection', cacheMs: 0 });
  const [on] = parse(intro(', cache_ms: 30000')).tokenValidators;
  t.match(on?.source, { kind: 'introspection', cacheMs: 30000 });
  t.match(problems(intro(', cache_ms: 3600001')), [/between 0 and 3600000|at most 3600000|3600000/]);
  t.match(problems('  j: { kind: jwks, url: "https://idp/jwks", cache_ms: 5 }\n'), [
    /unknown key "cache_ms"/,
  ]);
});

t.test('NumericDates a date cannot hold are malformed, not a crash later', async (t) => {
  const policy = {
    issuers: null,
    audiences: null,
    scopes: null,
    principalClaim: 'sub',
    clockSkewSeconds: 0,
    requireExp: true,
  };
  const now = 1_800_000_000;
  t.match(checkClaims({ sub: 'a', exp: 1e13 }, policy, now), { ok: false, problem: 'malformed' });
  t.match(checkClaims({ sub: 'a', exp: now + 60, iat: -1e13 }, policy, now), {
    ok: false,
    problem: 'malformed',
  });
  t.match(checkClaims({ sub: 'a', exp: 8.64e12 }, policy, now), { ok: true });
});
