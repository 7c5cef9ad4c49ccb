import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { verifyPasswordAgainstScram } from '../../src/auth/scram/verifier.ts';
import { DEFAULT_AUTH_QUERY, type UpstreamConfig } from '../../src/config/upstream-config.ts';
import {
  AUTH_QUERY_APPLICATION_NAME,
  AUTH_QUERY_CACHE_MAX_ENTRIES,
  AUTH_QUERY_STATEMENT_TIMEOUT_MS,
  createAuthQuerySource,
} from '../../src/credentials/auth-query.ts';
import { PgError } from '../../src/errors/pg-error.ts';
import { LogCapture } from '../helpers/log-capture.ts';
import { createCa, issueCertificate } from '../helpers/pki.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const ca = await createCa('auth_query CA');
const otherCa = await createCa('some other CA');
const serverCert = await issueCertificate(ca, {
  subject: 'CN=db.test',
  dns: ['db.test', 'localhost'],
  ips: ['127.0.0.1'],
  usage: 'server',
});
const upstream = await startTestPostgres(t, { tls: serverCert });
const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-auth-query-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const caFile = path.join(dir, 'upstream-ca.crt');
const otherCaFile = path.join(dir, 'other-ca.crt');
await writeFile(caFile, ca.certPem);
await writeFile(otherCaFile, otherCa.certPem);

await upstream.query(`
  set password_encryption = 'scram-sha-256';
  create role alice login password 'alice-pw';
  create role "o'neil ""the"" quote" login password 'quote-pw';
  create role nopass login;
  create role pgward_lookup login password 'lookup-pw';
  create role pgward_pool login password 'pool-pw';
  set password_encryption = 'md5';
  create role bob login password 'bob-pw';

  -- PgBouncer's recommendation: a SECURITY DEFINER function owned by a superuser, callable by the
  -- lookup role only, so the lookup role never reads pg_shadow itself.
  create function pgward_get_auth(p_usename text) returns table (usename name, passwd text)
    language sql security definer set search_path = pg_catalog
    as $$ select usename, passwd from pg_shadow where usename = p_usename $$;
  revoke all on function pgward_get_auth(text) from public;
  grant execute on function pgward_get_auth(text) to pgward_lookup, pgward_pool;

  -- The same lookup, counting its calls per user.
  create table lookup_calls (user_name text not null);
  create function counted_auth(p_user text) returns table (usename name, passwd text)
    language plpgsql as $$
    begin
      insert into lookup_calls values (p_user);
      return query select s.usename, s.passwd from pg_shadow s where s.usename = p_user;
    end $$;
`);

const FUNCTION_QUERY = 'select usename, passwd from pgward_get_auth($1)';
const COUNTED_QUERY = 'select * from counted_auth($1)';

/** md5 + md5(password ‖ user): PostgreSQL's md5 form, computed independently of pgward. */
function referenceMd5(password: string, user: string): string {
  return `md5${createHash('md5')
    .update(password + user)
    .digest('hex')}`;
}

async function lookupCalls(user: string): Promise<number> {
  const { rows } = await upstream.query('select count(*)::int as n from lookup_calls where user_name = $1', [
    user,
  ]);
  return rows[0].n as number;
}

async function lookupBackends(role: string): Promise<number> {
  const { rows } = await upstream.query(
    'select count(*)::int as n from pg_stat_activity where application_name = $1 and usename = $2',
    [AUTH_QUERY_APPLICATION_NAME, role],
  );
  return rows[0].n as number;
}

async function waitForNoBackends(role: string): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const n = await lookupBackends(role);
    if (n === 0) return 0;
    await sleep(50);
  }
  return lookupBackends(role);
}

interface SourceOptions {
  query?: string;
  user?: string;
  password?: string;
  poolSize?: number;
  cacheTtlMs?: number;
  port?: number;
  tls?: Partial<UpstreamConfig['tls']>;
}

/** An auth_query source against the test server (superuser, default query, no cache unless told). */
function openSource(t: Test, options: SourceOptions = {}) {
  const logs = new LogCapture();
  const upstreamConfig: UpstreamConfig = {
    host: upstream.host,
    port: options.port ?? upstream.port,
    tls: { mode: 'disable', caFile: undefined, serverName: undefined, ...options.tls },
    login: { mode: 'same', user: undefined, password: undefined },
    logins: new Map(),
    connectTimeoutMs: 2000,
  };
  const source = createAuthQuerySource(
    {
      query: options.query ?? DEFAULT_AUTH_QUERY,
      user: options.user ?? upstream.user,
      password: options.user === undefined ? upstream.password : options.password,
      database: 'postgres',
      poolSize: options.poolSize ?? 2,
      cacheTtlMs: options.cacheTtlMs ?? 0,
    },
    upstreamConfig,
    pino({ level: 'debug' }, logs),
  );
  t.teardown(() => source.close());
  return { source, logs };
}

t.test('the default query as superuser reads SCRAM verifiers and md5 hashes', async (t) => {
  const { source } = openSource(t);
  const alice = await source.lookup('alice');
  t.equal(alice?.md5, undefined);
  t.ok(alice?.scram, 'a SCRAM-SHA-256 verifier');
  if (!alice?.scram) return;
  t.ok(await verifyPasswordAgainstScram('alice-pw', alice.scram), 'accepts the right password');
  t.notOk(await verifyPasswordAgainstScram('Alice-pw', alice.scram), 'refuses another');

  t.same(await source.lookup('bob'), { scram: undefined, md5: referenceMd5('bob-pw', 'bob') });
});

t.test('an unknown user and a role without a password are unknown (undefined)', async (t) => {
  const { source } = openSource(t);
  t.equal(await source.lookup('nobody'), undefined);
  t.equal(await source.lookup('nopass'), undefined);
});

t.test('a non-superuser lookup role works through the SECURITY DEFINER function', async (t) => {
  const { source } = openSource(t, { query: FUNCTION_QUERY, user: 'pgward_lookup', password: 'lookup-pw' });
  const alice = await source.lookup('alice');
  t.ok(alice?.scram && (await verifyPasswordAgainstScram('alice-pw', alice.scram)));
  t.same(await source.lookup('bob'), { scram: undefined, md5: referenceMd5('bob-pw', 'bob') });
  t.equal(await source.lookup('nobody'), undefined);
  t.equal(await source.lookup('nopass'), undefined);
});

t.test(
  'the lookup role cannot read pg_shadow itself: the lookup fails, it does not say unknown',
  async (t) => {
    const { source, logs } = openSource(t, { user: 'pgward_lookup', password: 'lookup-pw' });
    const error = await source.lookup('alice').catch((e: unknown) => e);
    t.type(error, PgError);
    t.match(error, { message: 'auth_query failed', sqlstate: 'XX000' });
    t.match(logs.find({ msg: 'auth_query failed' }), [
      { level: 50, user: 'alice', sqlstate: '42501', err: /permission denied/ },
    ]);
  },
);

t.test('a wrong lookup password fails the lookup (never unknown) and is not logged', async (t) => {
  const { source, logs } = openSource(t, { user: 'pgward_lookup', password: 'not-the-lookup-pw' });
  await t.rejects(source.lookup('alice'), { message: 'auth_query failed' });
  t.match(logs.find({ msg: 'auth_query failed' }), [{ err: /password authentication failed/ }]);
  t.notMatch(JSON.stringify(logs.lines), /not-the-lookup-pw/);
});

t.test('columns are read by position, whatever the query calls them', async (t) => {
  const { source } = openSource(t, {
    query: 'select passwd as secret_first_name, usename as x, passwd from pg_shadow where usename = $1',
  });
  // Column 1 (a secret, not the name) does not match the user: unknown, not someone else's secret.
  t.equal(await source.lookup('alice'), undefined);
  const aliased = openSource(t, {
    query: 'select usename as who, passwd as what from pg_shadow where usename = $1',
  });
  t.ok((await aliased.source.lookup('alice'))?.scram);
});

t.test('a cleartext secret is unknown, warned about once per user, and never logged', async (t) => {
  const { source, logs } = openSource(t, { query: "select $1::text, 'hunter2-cleartext'::text" });
  t.equal(await source.lookup('carl'), undefined);
  t.equal(await source.lookup('carl'), undefined);
  t.equal(await source.lookup('dora'), undefined);
  const warnings = logs.lines.filter((line) => line.level === 40);
  t.match(warnings, [
    { user: 'carl', msg: /neither a SCRAM-SHA-256 verifier nor an md5 hash/ },
    { user: 'dora', msg: /neither a SCRAM-SHA-256 verifier nor an md5 hash/ },
  ]);
  t.equal(warnings.length, 2);
  t.notMatch(JSON.stringify(logs.lines), /hunter2/);
});

t.test("a row for another user's name is not taken as this user's secret", async (t) => {
  const { source, logs } = openSource(t, {
    query: "select usename, passwd from pg_shadow where usename = 'alice' and $1::text is not null",
  });
  t.equal(await source.lookup('mallory'), undefined);
  t.match(logs.find({ level: 40 }), [{ user: 'mallory', msg: /another user name/ }]);
});

t.test('a query returning several rows or too few columns fails the lookup', async (t) => {
  const like = openSource(t, { query: 'select usename, passwd from pg_shadow where usename like $1' });
  await t.rejects(like.source.lookup('%'), { message: 'auth_query failed', sqlstate: 'XX000' });
  t.match(like.logs.find({ msg: 'auth_query failed' }), [{ user: '%', err: /returned \d+ rows/ }]);
  const narrow = openSource(t, { query: 'select passwd from pg_shadow where usename = $1' });
  await t.rejects(narrow.source.lookup('alice'), { message: 'auth_query failed' });
  t.match(narrow.logs.find({ msg: 'auth_query failed' }), [{ err: /1 column/ }]);
});

t.test('the user name is bound as $1, never interpolated', async (t) => {
  const { source } = openSource(t);
  const quoted = await source.lookup(`o'neil "the" quote`);
  t.ok(quoted?.scram && (await verifyPasswordAgainstScram('quote-pw', quoted.scram)));
  for (const hostile of [`'; DROP ROLE alice; --`, `alice'; DROP ROLE alice; --`, `alice" OR 1=1 --`]) {
    t.equal(await source.lookup(hostile), undefined, hostile);
  }
  const { rows } = await upstream.query("select 1 from pg_roles where rolname = 'alice'");
  t.equal(rows.length, 1, 'alice still exists');
});

t.test('an answer is reused within the TTL and looked up again after it', async (t) => {
  await upstream.query("set password_encryption = 'scram-sha-256'; create role dave login password 'old-pw'");
  const { source } = openSource(t, { cacheTtlMs: 600 });
  const first = await source.lookup('dave');
  t.ok(first?.scram && (await verifyPasswordAgainstScram('old-pw', first.scram)));
  await upstream.query("alter role dave password 'new-pw'");
  const cached = await source.lookup('dave');
  t.equal(cached, first, 'the cached answer, within the TTL');
  await sleep(700);
  const fresh = await source.lookup('dave');
  t.ok(fresh?.scram && (await verifyPasswordAgainstScram('new-pw', fresh.scram)), 'the new one after it');
});

t.test('a not-found answer is cached too', async (t) => {
  const { source } = openSource(t, { cacheTtlMs: 600 });
  t.equal(await source.lookup('erin'), undefined);
  await upstream.query(
    "set password_encryption = 'scram-sha-256'; create role erin login password 'erin-pw'",
  );
  t.equal(await source.lookup('erin'), undefined, 'still unknown within the TTL');
  await sleep(700);
  t.ok((await source.lookup('erin'))?.scram, 'found after it');
});

t.test('with TTL 0 every lookup asks the upstream', async (t) => {
  const { source } = openSource(t, { query: COUNTED_QUERY, cacheTtlMs: 0 });
  await source.lookup('ttl0-user');
  await source.lookup('ttl0-user');
  t.equal(await lookupCalls('ttl0-user'), 2);
});

t.test('concurrent lookups of one user share one query', async (t) => {
  const { source } = openSource(t, { query: COUNTED_QUERY, cacheTtlMs: 0 });
  const answers = await Promise.all(Array.from({ length: 10 }, () => source.lookup('alice')));
  t.equal(await lookupCalls('alice'), 1);
  t.ok(answers.every((answer) => answer === answers[0] && answer?.scram));
});

t.test(`the cache holds at most ${AUTH_QUERY_CACHE_MAX_ENTRIES} answers, dropping the oldest`, async (t) => {
  const { source } = openSource(t, { query: COUNTED_QUERY, cacheTtlMs: 600_000, poolSize: 4 });
  const names = Array.from({ length: AUTH_QUERY_CACHE_MAX_ENTRIES + 1 }, (_, i) => `bound-${i}`);
  // The first answer alone, so it is the oldest; the rest in batches (their order within one does not matter).
  await source.lookup('bound-0');
  for (let i = 1; i < names.length; i += 500) {
    await Promise.all(names.slice(i, i + 500).map((name) => source.lookup(name)));
  }
  await source.lookup('bound-0');
  await source.lookup(`bound-${AUTH_QUERY_CACHE_MAX_ENTRIES}`);
  t.equal(await lookupCalls('bound-0'), 2, 'the oldest answer was dropped');
  t.equal(await lookupCalls(`bound-${AUTH_QUERY_CACHE_MAX_ENTRIES}`), 1, 'the newest is still cached');
});

t.test('the pool opens at most poolSize connections, named for pg_stat_activity', async (t) => {
  const { source } = openSource(t, {
    query: 'select a.usename, a.passwd from pgward_get_auth($1) a cross join pg_sleep(0.05)',
    user: 'pgward_pool',
    password: 'pool-pw',
    poolSize: 2,
  });
  let most = 0;
  let running = true;
  const watching = (async () => {
    while (running) {
      most = Math.max(most, await lookupBackends('pgward_pool'));
      await sleep(10);
    }
  })();
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => source.lookup(i === 0 ? 'alice' : `pool-user-${i}`)),
  );
  running = false;
  await watching;
  t.ok(answers[0]?.scram);
  t.equal(answers.filter((answer) => answer === undefined).length, 19);
  t.ok(most <= 2, `at most 2 backends at once (saw ${most})`);
  t.equal(await lookupBackends('pgward_pool'), 2, 'both stay open, idle, for the next lookups');

  await source.close();
  t.equal(await waitForNoBackends('pgward_pool'), 0, 'close() ends them');
  await source.close();
  await t.rejects(source.lookup('alice'), { message: 'auth_query failed' }, 'a closed source fails lookups');
});

t.test(`a lookup running longer than ${AUTH_QUERY_STATEMENT_TIMEOUT_MS} ms is cancelled`, async (t) => {
  const seconds = AUTH_QUERY_STATEMENT_TIMEOUT_MS / 1000 + 10;
  const { source, logs } = openSource(t, {
    query: `select usename, passwd from pg_shadow cross join pg_sleep(${seconds}) where usename = $1`,
  });
  const started = performance.now();
  await t.rejects(source.lookup('alice'), { message: 'auth_query failed' });
  t.ok(performance.now() - started < AUTH_QUERY_STATEMENT_TIMEOUT_MS + 3000);
  t.match(logs.find({ msg: 'auth_query failed' }), [{ sqlstate: '57014', err: /statement timeout/ }]);
});

/** A lookup whose answer says whether its own connection uses TLS. */
const TLS_PROBE = `select $1::text, case when ssl then 'md5${'1'.repeat(32)}' else 'md5${'0'.repeat(32)}' end
  from pg_stat_ssl where pid = pg_backend_pid()`;

async function probeTls(t: Test, options: SourceOptions): Promise<boolean | unknown> {
  const { source } = openSource(t, { query: TLS_PROBE, ...options });
  try {
    const answer = await source.lookup('probe');
    return answer?.md5 === `md5${'1'.repeat(32)}`;
  } catch (error) {
    return error;
  }
}

t.test('tls modes follow libpq: disable, prefer, require, verify-ca, verify-full', async (t) => {
  t.equal(await probeTls(t, { tls: { mode: 'disable' } }), false, 'disable');
  t.equal(await probeTls(t, { tls: { mode: 'prefer' } }), true, 'prefer, the server offering TLS');
  t.equal(
    await probeTls(t, { tls: { mode: 'require', caFile: otherCaFile } }),
    true,
    'require verifies nothing',
  );
  t.equal(await probeTls(t, { tls: { mode: 'verify-ca', caFile } }), true, 'verify-ca');
  t.equal(
    await probeTls(t, { tls: { mode: 'verify-ca', caFile, serverName: 'wrong.test' } }),
    true,
    'verify-ca does not check the name',
  );
  t.equal(await probeTls(t, { tls: { mode: 'verify-full', caFile } }), true, 'verify-full, by IP');
  t.equal(await probeTls(t, { tls: { mode: 'verify-full', caFile, serverName: 'db.test' } }), true);
});

t.test('verification failures fail the lookup', async (t) => {
  t.match(await probeTls(t, { tls: { mode: 'verify-ca', caFile: otherCaFile } }), {
    message: 'auth_query failed',
    sqlstate: '08006',
  });
  const { source, logs } = openSource(t, {
    query: TLS_PROBE,
    tls: { mode: 'verify-full', caFile, serverName: 'wrong.test' },
  });
  await t.rejects(source.lookup('probe'), { message: 'auth_query failed' });
  t.match(logs.find({ msg: 'auth_query failed' }), [{ err: /wrong\.test/ }]);
});

/** A front that answers every SSLRequest with 'N' and forwards the rest: a server without TLS. */
async function startTlsRefusingFront(t: Test): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    sockets.add(inbound);
    inbound.on('error', () => inbound.destroy()).on('close', () => sockets.delete(inbound));
    inbound.once('data', (first) => {
      let rest = first;
      if (first.length >= 8 && first.readUInt32BE(4) === 80877103) {
        inbound.write('N');
        rest = first.subarray(8);
      }
      const outbound = net.connect({ host: upstream.host, port: upstream.port });
      sockets.add(outbound);
      outbound.on('error', () => inbound.destroy()).on('close', () => inbound.destroy());
      inbound.on('close', () => outbound.destroy());
      if (rest.length > 0) outbound.write(rest);
      inbound.pipe(outbound).pipe(inbound);
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

t.test('prefer falls back to plaintext when the server refuses TLS; require does not', async (t) => {
  const port = await startTlsRefusingFront(t);
  const { source, logs } = openSource(t, { query: TLS_PROBE, port, tls: { mode: 'prefer' } });
  t.same(await source.lookup('probe'), { scram: undefined, md5: `md5${'0'.repeat(32)}` }, 'plaintext');
  t.same(await source.lookup('probe'), { scram: undefined, md5: `md5${'0'.repeat(32)}` }, 'and stays so');
  t.equal(logs.find({ level: 30 }).filter((line) => /does not offer TLS/.test(line.msg ?? '')).length, 1);
  t.match(await probeTls(t, { port, tls: { mode: 'require' } }), { message: 'auth_query failed' });
  t.equal(await probeTls(t, { port, tls: { mode: 'disable' } }), false);
});

t.test('a missing CA file is an error when the source is created', async (t) => {
  t.throws(() => openSource(t, { tls: { mode: 'verify-ca', caFile: path.join(dir, 'absent.crt') } }), {
    message: /auth_query: cannot read the upstream CA file/,
  });
});

t.test('with the upstream down a lookup fails (not cached) and works again once it is back', async (t) => {
  const { source, logs } = openSource(t, { cacheTtlMs: 60_000 });
  t.ok((await source.lookup('alice'))?.scram);
  await upstream.stop();
  try {
    const error = await source.lookup('bob').catch((e: unknown) => e);
    t.match(error, { message: 'auth_query failed', sqlstate: '08006' });
    t.match(logs.find({ msg: 'auth_query failed' }), [
      { level: 50, user: 'bob', err: /ECONNREFUSED|connect/ },
    ]);
    t.ok((await source.lookup('alice'))?.scram, 'answers cached before the outage still serve');
  } finally {
    await upstream.start();
  }
  t.same(await source.lookup('bob'), { scram: undefined, md5: referenceMd5('bob-pw', 'bob') }, 'recovered');
});
