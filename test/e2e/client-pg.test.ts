import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import t from 'tap';
import { makeCopyPayload, sha256OfStream } from '../helpers/payload.ts';
import { PASSWORD_TLS_AND_PLAIN, startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const upstream = await startTestPostgres(t);
const PASSWORD = 'client-secret-pg';
const ward = await startTestPgward(t, {
  upstream,
  hba: PASSWORD_TLS_AND_PLAIN,
  users: { postgres: PASSWORD },
});

function client(tls: boolean): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    password: PASSWORD,
    database: 'postgres',
    ssl: tls ? { ca: readFileSync(ward.certFile), servername: 'localhost' } : false,
  });
}

async function withClient<T>(tls: boolean, body: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = client(tls);
  await c.connect();
  try {
    return await body(c);
  } finally {
    await c.end();
  }
}

t.test('pg connects plain and over verified TLS and runs queries', async (t) => {
  for (const tls of [false, true]) {
    const rows = await withClient(tls, async (c) => (await c.query('select $1::int + 1 as n', [41])).rows);
    t.same(rows, [{ n: 42 }], tls ? 'over TLS' : 'plain');
  }
  t.equal(ward.logs.find({ msg: 'auth decision', rule: 'tls', result: 'accepted' }).length, 1);
  t.equal(ward.logs.find({ msg: 'auth decision', rule: 'plain', result: 'accepted' }).length, 1);
});

t.test('pg sees the upstream ParameterStatus and pgward-issued BackendKeyData', async (t) => {
  await withClient(true, async (c) => {
    const internal = c as unknown as { processID: number; secretKey: number };
    const backendPid = (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    t.not(internal.processID, backendPid, 'the client never sees the upstream backend key');
    t.ok(internal.processID > 0);
    const version = (await c.query('show server_version')).rows[0].server_version as string;
    t.match(version, /^\d+/);
  });
});

t.test('COPY in and out of 10 MB with pg-copy-streams', async (t) => {
  const payload = makeCopyPayload();
  await withClient(true, async (c) => {
    await c.query('create table copy_pg (id int, payload text)');
    await pipeline(
      Readable.from([Buffer.from(payload.text)]),
      c.query(copyFrom('copy copy_pg from stdin with (format csv)')),
    );
    t.equal((await c.query('select count(*)::int as n from copy_pg')).rows[0].n, payload.rows);
    const back = await sha256OfStream(
      c.query(copyTo('copy (select * from copy_pg order by id) to stdout with (format csv)')),
    );
    t.equal(back, payload.sha256, '10 MB came back byte for byte');
  });
});

t.test('a named prepared statement is reused across executions', async (t) => {
  await withClient(false, async (c) => {
    for (const n of [1, 2, 3]) {
      const result = await c.query({ name: 'double', text: 'select $1::int * 2 as v', values: [n] });
      t.equal(result.rows[0].v, n * 2);
    }
    const prepared = await c.query(
      "select count(*)::int as n from pg_prepared_statements where name = 'double'",
    );
    t.equal(prepared.rows[0].n, 1, 'the statement lives in the upstream session');
  });
});

t.test('LISTEN/NOTIFY across two pgward sessions', async (t) => {
  const listener = client(true);
  await listener.connect();
  const received = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
  await listener.query('listen pg_channel');
  await withClient(false, (c) => c.query("notify pg_channel, 'from another session'"));
  const notification = await received;
  t.equal(notification.channel, 'pg_channel');
  t.equal(notification.payload, 'from another session');
  await listener.end();
});

t.test('pg cancels a running pg_sleep through pgward', async (t) => {
  const victim = client(true);
  await victim.connect();
  const query = victim.query('select pg_sleep(30)');
  const failed = query.then(
    () => null,
    (error: { code?: string }) => error,
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const started = Date.now();
  (client(true) as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(
    victim,
    (victim as unknown as { activeQuery: unknown }).activeQuery,
  );
  const error = await failed;
  t.equal(error?.code, '57014', 'canceling statement due to user request');
  t.ok(Date.now() - started < 5000);
  t.same((await victim.query('select 1 as one')).rows, [{ one: 1 }], 'the session goes on after the cancel');
  await victim.end();
});

t.test('a CancelRequest with a wrong key is ignored silently', async (t) => {
  await withClient(true, async (c) => {
    const internal = c as unknown as { processID: number; secretKey: number };
    const sleeping = c.query('select pg_sleep(0.5) as slept');
    const fake = client(false) as unknown as {
      processID: number;
      secretKey: number;
      cancel(c: unknown, q: unknown): void;
    };
    const wrongKey = { processID: internal.processID, secretKey: internal.secretKey ^ 1, activeQuery: 'q' };
    fake.cancel(wrongKey, 'q');
    const result = await sleeping;
    t.equal(result.rows.length, 1, 'the query completed');
    await ward.logs.waitFor({ msg: 'cancel request', matched: false });
  });
});

t.test("a failing query's SQLSTATE and fields reach pg unchanged", async (t) => {
  await withClient(true, async (c) => {
    const error = await c.query('select * from missing_table').catch((e: pg.DatabaseError) => e);
    t.match(error, {
      code: '42P01',
      message: 'relation "missing_table" does not exist',
      severity: 'ERROR',
      position: '15',
    });
    const unique = await c
      .query('create table uniq (id int primary key); insert into uniq values (1), (1)')
      .catch((e: pg.DatabaseError) => e);
    t.match(unique, { code: '23505', constraint: 'uniq_pkey', table: 'uniq' });
  });
});
