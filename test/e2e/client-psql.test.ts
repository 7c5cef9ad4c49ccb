import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { psql, spawnPsql } from '../helpers/clients.ts';
import { makeCopyPayload, sha256 } from '../helpers/payload.ts';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const pg = await startTestPostgres(t);
const CLIENT_PASSWORD = 'client-secret-psql';
const ward = await startTestPgward(t, {
  upstream: pg,
  hba: `rules:
  - { name: tls-password, type: hostssl, address: 127.0.0.1/32, database: all, user: all, method: password }
  - { name: plain-password, type: host, address: 127.0.0.1/32, database: all, user: all, method: password, allow_cleartext: true }
`,
  users: { postgres: CLIENT_PASSWORD },
});
const plain = `host=127.0.0.1 port=${ward.port} user=postgres dbname=postgres sslmode=disable`;
const verified = `host=127.0.0.1 port=${ward.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${ward.certFile}`;
const run = (conninfo: string, args: string[], input?: string) =>
  psql(conninfo, args, { password: CLIENT_PASSWORD, ...(input === undefined ? {} : { input }) });

t.test('psql connects without TLS and runs a query', async (t) => {
  const result = await run(plain, ['-At', '-c', 'select 40 + 2']);
  t.equal(result.stderr, '');
  t.equal(result.stdout.trim(), '42');
  const decision = await ward.logs.waitFor({
    msg: 'auth decision',
    rule: 'plain-password',
    result: 'accepted',
  });
  t.equal(decision.tls, false);
  t.equal(decision.line, 3, 'the log names the rule and its line');
});

t.test('psql connects over TLS with verify-full against the served certificate', async (t) => {
  const result = await run(verified, ['-At', '-c', 'select current_user']);
  t.equal(result.stdout.trim(), 'postgres', result.stderr);
  const decision = await ward.logs.waitFor({
    msg: 'auth decision',
    rule: 'tls-password',
    result: 'accepted',
  });
  t.equal(decision.tls, true);
});

t.test('a wrong password gets 28P01 in PostgreSQL wording', async (t) => {
  const result = await psql(`${verified}`, ['-c', 'select 1'], { password: 'wrong' });
  t.not(result.code, 0);
  t.match(result.stderr, 'FATAL:  password authentication failed for user "postgres"');
});

t.test('COPY in and out of 10 MB round-trips through psql', async (t) => {
  const file = path.join(ward.dir, 'in.csv');
  const payload = makeCopyPayload();
  await writeFile(file, payload.text);
  const out = path.join(ward.dir, 'out.csv');
  const result = await run(verified, [
    '-c',
    'create table copy_psql (id int, payload text)',
    '-c',
    `\\copy copy_psql from '${file}' with (format csv)`,
    '-c',
    `\\copy (select * from copy_psql order by id) to '${out}' with (format csv)`,
  ]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `COPY ${payload.rows}`);
  t.equal(sha256(await readFile(out)), payload.sha256, '10 MB came back byte for byte');
});

t.test('a prepared statement runs through psql', async (t) => {
  const result = await run(verified, [
    '-At',
    '-c',
    'prepare twice(int) as select $1 * 2',
    '-c',
    'execute twice(21)',
  ]);
  t.equal(result.stdout.trim().split('\n').at(-1), '42', result.stderr);
});

t.test('LISTEN/NOTIFY reaches psql', async (t) => {
  const result = await run(verified, [
    '-c',
    'listen pgward_channel',
    '-c',
    "notify pgward_channel, 'hello'",
    '-c',
    'select 1',
  ]);
  t.match(
    result.stdout,
    /Asynchronous notification "pgward_channel" with payload "hello" received from server process with PID \d+/,
  );
});

t.test("psql's Ctrl-C cancels the running query through pgward", async (t) => {
  const started = Date.now();
  const sessionStarted = ward.logs.next({ msg: 'session started' });
  const running = spawnPsql(verified, ['-c', 'select pg_sleep(30)'], CLIENT_PASSWORD);
  const { conn } = await sessionStarted;
  await new Promise((resolve) => setTimeout(resolve, 300));
  running.child.kill('SIGINT');
  const result = await running.done;
  t.match(result.stderr, 'canceling statement due to user request');
  t.ok(Date.now() - started < 10_000, 'cancelled well before the sleep ends');
  const cancel = await ward.logs.waitFor({ msg: 'cancel request' });
  await ward.logs.waitFor({ msg: 'session ended', conn });
  t.equal(ward.pgward.runtime.cancelMap.size, 0, 'the session key was revoked when psql left');
  t.equal(cancel.matched, true);
});

t.test("a failing query's SQLSTATE reaches psql unchanged", async (t) => {
  const result = await run(verified, ['-c', '\\set VERBOSITY verbose', '-c', 'select 1/0']);
  t.not(result.code, 0);
  t.match(result.stderr, 'ERROR:  22012: division by zero');
  const missing = await run(verified, ['-c', '\\set VERBOSITY verbose', '-c', 'select * from no_such_table']);
  t.match(missing.stderr, 'ERROR:  42P01: relation "no_such_table" does not exist');
});
