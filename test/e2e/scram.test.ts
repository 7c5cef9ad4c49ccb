/**
 * scram-sha-256 and md5 end to end: psql, pg, postgres.js and psycopg log in plain and over TLS,
 * with SCRAM-SHA-256-PLUS where the client supports it; failures for a wrong password and an unknown
 * user are byte-identical and take the same time; protocol abuse gets PostgreSQL's errors.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import t from 'tap';
import { md5PasswordHash } from '../../src/auth/password.ts';
import { createScramVerifier, formatScramVerifier } from '../../src/auth/scram/verifier.ts';
import { ScramClient } from '../../src/upstream/scram-client.ts';
import { psql, python } from '../helpers/clients.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';
import { RawClient, startupPacket } from '../helpers/raw-client.ts';

const upstream = await startTestPostgres(t);
const PASSWORDS = { alice: 'alice pw', bob: 'bob pw', carol: 'carol pw' };

const ward = await startTestPgward(t, {
  upstream,
  hba: `rules:
  - { name: md5-users, type: host, address: 127.0.0.1/32, database: all, user: [bob, carol, nobody], method: md5 }
  - { name: scram, type: host, address: all, database: all, user: all, method: scram-sha-256 }
`,
  usersFile: `users:
  alice:
    scram: "${formatScramVerifier(await createScramVerifier(PASSWORDS.alice))}"
  bob:
    md5: "${md5PasswordHash(PASSWORDS.bob, 'bob')}"
  carol:
    scram: "${formatScramVerifier(await createScramVerifier(PASSWORDS.carol))}"
  zelda:
    scram: "${formatScramVerifier(await createScramVerifier('zelda pw'))}"
`,
  login: `{ mode: service, user: ${upstream.user}, password: ${JSON.stringify(upstream.password)} }`,
  // The timing test fails 100 logins from one address: no brute-force delay here (tested elsewhere).
  limits: { auth_failure_delay: '{ after: 1000 }' },
  extraConfig: 'mock_auth_secret: test-mock-secret',
});

const base = `host=127.0.0.1 port=${ward.port} dbname=postgres`;
const tlsBase = `${base} sslmode=verify-full sslrootcert=${ward.certFile} host=localhost hostaddr=127.0.0.1`;

/** The SASL mechanism pgward logged for the last connection of a user. */
function mechanismsLogged(): string[] {
  return ward.logs.find({ msg: 'SASL mechanism selected' }).map((line) => String(line.mechanism));
}

t.test('psql logs in with SCRAM-SHA-256 plain, and with -PLUS over TLS when it requires it', async (t) => {
  const plain = await psql(`${base} user=alice sslmode=disable`, ['-tAc', 'select current_user'], {
    password: PASSWORDS.alice,
  });
  t.equal(plain.code, 0, plain.stderr);
  t.equal(plain.stdout.trim(), upstream.user, 'the session runs as the service login');
  t.equal(mechanismsLogged().at(-1), 'SCRAM-SHA-256');

  const plus = await psql(`${tlsBase} user=alice channel_binding=require`, ['-tAc', 'select 1'], {
    password: PASSWORDS.alice,
  });
  t.equal(plus.code, 0, plus.stderr);
  t.equal(mechanismsLogged().at(-1), 'SCRAM-SHA-256-PLUS', 'libpq bound the exchange to the certificate');

  const noBinding = await psql(`${tlsBase} user=alice channel_binding=disable`, ['-tAc', 'select 1'], {
    password: PASSWORDS.alice,
  });
  t.equal(noBinding.code, 0, noBinding.stderr);
  t.equal(mechanismsLogged().at(-1), 'SCRAM-SHA-256');

  const wrong = await psql(`${base} user=alice sslmode=disable`, ['-tAc', 'select 1'], { password: 'nope' });
  t.not(wrong.code, 0);
  t.match(wrong.stderr, /FATAL: {2}password authentication failed for user "alice"/);
});

t.test('pg logs in with SCRAM plain and with -PLUS over TLS (enableChannelBinding)', async (t) => {
  for (const tls of [false, true]) {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: ward.port,
      user: 'alice',
      password: PASSWORDS.alice,
      database: 'postgres',
      ssl: tls ? { ca: readFileSync(ward.certFile), servername: 'localhost' } : false,
      enableChannelBinding: tls,
    });
    await client.connect();
    t.same((await client.query('select 2 as n')).rows, [{ n: 2 }]);
    await client.end();
    t.equal(mechanismsLogged().at(-1), tls ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256');
  }
  const wrong = new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'alice',
    password: 'nope',
    database: 'postgres',
  });
  await t.rejects(wrong.connect(), {
    code: '28P01',
    message: 'password authentication failed for user "alice"',
  });
});

t.test('postgres.js logs in with SCRAM plain and over TLS', async (t) => {
  for (const ssl of [false, { ca: readFileSync(ward.certFile), servername: 'localhost' }] as const) {
    const sql = postgres({
      host: '127.0.0.1',
      port: ward.port,
      user: 'alice',
      pass: PASSWORDS.alice,
      database: 'postgres',
      ssl,
      max: 1,
      onnotice: () => {},
    });
    t.same(await sql`select 3 as n`, [{ n: 3 }], ssl ? 'TLS' : 'plain');
    await sql.end();
  }
  const wrong = postgres({ host: '127.0.0.1', port: ward.port, user: 'alice', pass: 'nope', max: 1 });
  await t.rejects(wrong`select 1`, { code: '28P01' });
  await wrong.end();
});

t.test('psycopg 3 logs in with SCRAM, and with -PLUS when it requires channel binding', async (t) => {
  const result = await python(
    `
import psycopg, sys
for extra in ["sslmode=disable", "sslmode=verify-full sslrootcert=${ward.certFile} host=localhost hostaddr=127.0.0.1 channel_binding=require"]:
    with psycopg.connect("host=127.0.0.1 port=${ward.port} dbname=postgres user=alice password='alice pw' " + extra) as conn:
        print(conn.execute("select 4").fetchone()[0])
try:
    psycopg.connect("host=127.0.0.1 port=${ward.port} dbname=postgres user=alice password=nope sslmode=disable")
except psycopg.OperationalError as e:
    print("refused", "28P01" if "password authentication failed" in str(e) else str(e))
`,
  );
  t.equal(result.code, 0, result.stderr);
  t.same(result.stdout.trim().split('\n'), ['4', '4', 'refused 28P01']);
  t.same(mechanismsLogged().slice(-3, -1), ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']);
});

t.test(
  'md5: a user with an md5 hash gets the md5 challenge; a SCRAM user on the md5 rule gets SCRAM',
  async (t) => {
    const before = mechanismsLogged().length;
    const bob = await psql(`${base} user=bob sslmode=disable`, ['-tAc', 'select 5'], {
      password: PASSWORDS.bob,
    });
    t.equal(bob.code, 0, bob.stderr);
    t.equal(mechanismsLogged().length, before, 'no SASL exchange for bob');
    const wrong = await psql(`${base} user=bob sslmode=disable`, ['-tAc', 'select 5'], { password: 'nope' });
    t.match(wrong.stderr, /password authentication failed for user "bob"/);

    const carol = await psql(`${base} user=carol sslmode=disable`, ['-tAc', 'select 6'], {
      password: PASSWORDS.carol,
    });
    t.equal(carol.code, 0, carol.stderr);
    t.equal(mechanismsLogged().length, before + 1, 'carol has a SCRAM verifier: SCRAM, as PostgreSQL does');

    const client = new pg.Client({
      host: '127.0.0.1',
      port: ward.port,
      user: 'bob',
      password: PASSWORDS.bob,
      database: 'postgres',
    });
    await client.connect();
    t.same((await client.query('select 7 as n')).rows, [{ n: 7 }], 'pg answers the md5 challenge too');
    await client.end();
  },
);

/** One raw SCRAM login; returns every message and the bytes that came after the client-final-message. */
async function rawScram(user: string, password: string) {
  const client = await RawClient.connect(ward.port);
  const started = process.hrtime.bigint();
  client.send(startupPacket(3, 0, { user, database: 'postgres' }));
  const sasl = await client.waitForMessage('authenticationSASL');
  const scram = new ScramClient(password);
  client.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.firstMessage()));
  const cont = await client.waitForMessage('authenticationSASLContinue');
  const serverFirst = String(cont?.data ?? '');
  const final = await scram.finalMessage(serverFirst);
  const offset = client.received.length;
  client.send(serialize.sendSCRAMClientFinalMessage(final));
  await client.waitClosed();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  client.destroy();
  return { sasl, serverFirst, tail: client.received.subarray(offset), ms };
}

t.test(
  'a wrong password and an unknown user fail with byte-identical errors after a full exchange',
  async (t) => {
    const wrong = await rawScram('zelda', 'not zelda pw');
    const unknown = await rawScram('xenia', 'anything');
    t.same(wrong.sasl?.mechanisms, ['SCRAM-SHA-256'], 'plain connection: no -PLUS on offer');
    t.same(unknown.sasl?.mechanisms, wrong.sasl?.mechanisms);
    for (const run of [wrong, unknown]) {
      const salt = /,s=([^,]+),i=(\d+)$/.exec(run.serverFirst);
      t.equal(Buffer.from(salt?.[1] ?? '', 'base64').length, 16, 'a 16-byte salt');
      t.equal(salt?.[2], '4096', 'the iteration count real users have');
    }
    t.ok(wrong.tail.includes(Buffer.from('28P01')), 'wrong password: 28P01');
    const normalized = Buffer.from(unknown.tail.toString('latin1').replaceAll('xenia', 'zelda'), 'latin1');
    t.same(normalized, wrong.tail, 'the same bytes, but for the user name');
    t.match(wrong.tail.toString(), /password authentication failed for user "zelda"/);

    const again = await rawScram('xenia', 'anything else');
    t.equal(
      again.serverFirst.split(',s=')[1],
      unknown.serverFirst.split(',s=')[1],
      'the mock salt is stable',
    );
    const reasons = ward.logs
      .find({ msg: 'auth decision', result: 'rejected' })
      .map((line) => String(line.reason));
    t.ok(
      reasons.some((r) => /no stored credentials \(mock exchange\)/.test(r)),
      'the log tells them apart',
    );
  },
);

t.test(
  'time to failure: wrong password and unknown user differ by less than 20% (median of 50)',
  async (t) => {
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 50; i++) {
      wrong.push((await rawScram('zelda', `wrong ${i}`)).ms);
      unknown.push((await rawScram('xenia', `wrong ${i}`)).ms);
    }
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return ((sorted[24] ?? 0) + (sorted[25] ?? 0)) / 2;
    };
    const a = median(wrong);
    const b = median(unknown);
    const ratio = Math.abs(a - b) / Math.max(a, b);
    t.ok(
      ratio < 0.2,
      `medians ${a.toFixed(2)} ms vs ${b.toFixed(2)} ms differ by ${(ratio * 100).toFixed(1)}%`,
    );
  },
);

t.test('SASL abuse gets PostgreSQL errors', async (t) => {
  const open = async () => {
    const client = await RawClient.connect(ward.port);
    client.send(startupPacket(3, 0, { user: 'alice', database: 'postgres' }));
    await client.waitForMessage('authenticationSASL');
    return client;
  };
  const errorOf = async (client: RawClient) => {
    await client.waitClosed();
    const error = client.messages().find((m) => m.name === 'error');
    client.destroy();
    return { code: error?.code, message: error?.message, detail: error?.detail };
  };

  const plus = await open();
  plus.send(
    serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=abc'),
  );
  t.same(await errorOf(plus), {
    code: '08P01',
    message: 'client selected an invalid SASL authentication mechanism',
    detail: undefined,
  });

  const big = await open();
  big.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,n=,r=${'a'.repeat(2000)}`));
  t.same(await errorOf(big), { code: '08P01', message: 'invalid message length', detail: undefined });

  const authzid = await open();
  authzid.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,a=root,n=,r=abc'));
  t.same(await errorOf(authzid), {
    code: '0A000',
    message: 'client uses authorization identity, but it is not supported',
    detail: undefined,
  });
  const decision = ward.logs.find({ msg: 'auth decision', result: 'error', sqlstate: '0A000' });
  t.equal(decision.length, 1, 'a broken exchange is logged as an auth decision');
});

t.test('a SASLInitialResponse without data gets an empty challenge, then the exchange goes on', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(startupPacket(3, 0, { user: 'alice', database: 'postgres' }));
  await client.waitForMessage('authenticationSASL');
  const noData = Buffer.from('SCRAM-SHA-256\0\xff\xff\xff\xff', 'latin1');
  const header = Buffer.alloc(5);
  header.write('p');
  header.writeInt32BE(noData.length + 4, 1);
  client.send(Buffer.concat([header, noData]));
  const empty = await client.waitForMessage('authenticationSASLContinue');
  t.equal(empty?.data, '', 'an empty challenge');
  const scram = new ScramClient(PASSWORDS.alice);
  const offset = client.received.length;
  client.send(serialize.sendSCRAMClientFinalMessage(scram.firstMessage()));
  await client.waitForBytes(offset + 1);
  const serverFirst = String(
    client.messages(offset).find((m) => m.name === 'authenticationSASLContinue')?.data ?? '',
  );
  t.match(serverFirst, /^r=.+,s=.+,i=4096$/);
  client.send(serialize.sendSCRAMClientFinalMessage(await scram.finalMessage(serverFirst)));
  t.ok(await client.waitForMessage('readyForQuery', offset), 'logged in');
  const final = client.messages(offset).find((m) => m.name === 'authenticationSASLFinal');
  t.doesNotThrow(() => scram.verifyServerFinal(String(final?.data ?? '')), 'the server proved the key too');
  client.destroy();
});

t.test(
  'a certificate without a usable hash (Ed25519): no -PLUS on offer, libpq\'s "y" flag is accepted',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgward-ed25519-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const key = path.join(dir, 'server.key');
    const cert = path.join(dir, 'server.crt');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ED25519', '-out', key], { stdio: 'ignore' });
    execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-key', key, '-subj', '/CN=localhost', '-days', '1', '-out', cert],
      { stdio: 'ignore' },
    );
    const edWard = await startTestPgward(t, {
      upstream,
      hba: 'rules:\n  - { type: hostssl, address: all, database: all, user: all, method: scram-sha-256 }\n',
      users: { alice: PASSWORDS.alice },
      login: `{ mode: service, user: ${upstream.user}, password: ${JSON.stringify(upstream.password)} }`,
      files: { 'server.crt': readFileSync(cert, 'utf8'), 'server.key': readFileSync(key, 'utf8') },
    });
    const conninfo = `host=127.0.0.1 port=${edWard.port} dbname=postgres user=alice sslmode=require`;
    const prefer = await psql(conninfo, ['-tAc', 'select 8'], { password: PASSWORDS.alice });
    t.equal(prefer.code, 0, prefer.stderr);
    t.equal(prefer.stdout.trim(), '8', 'libpq (channel_binding=prefer) logs in with the y flag');
    const required = await psql(`${conninfo} channel_binding=require`, ['-tAc', 'select 8'], {
      password: PASSWORDS.alice,
    });
    t.not(required.code, 0);
    t.match(
      required.stderr,
      /channel binding/,
      'a client that requires binding refuses, as against PostgreSQL',
    );
  },
);
