import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import t from 'tap';
import { makeCopyPayload, sha256OfStream } from '../helpers/payload.ts';
import { PASSWORD_TLS_AND_PLAIN, startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const upstream = await startTestPostgres(t);
const PASSWORD = 'client-secret-postgresjs';
const ward = await startTestPgward(t, {
  upstream,
  hba: PASSWORD_TLS_AND_PLAIN,
  users: { postgres: PASSWORD },
});

function connect(tls: boolean) {
  return postgres({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    password: PASSWORD,
    database: 'postgres',
    ssl: tls ? { ca: readFileSync(ward.certFile), servername: 'localhost' } : false,
    max: 1,
    onnotice: () => {},
  });
}

const sql = connect(true);
t.teardown(() => sql.end({ timeout: 1 }));

t.test('postgres.js connects plain and over verified TLS and runs queries', async (t) => {
  const plain = connect(false);
  const [row] = await plain`select ${41}::int + 1 as n`;
  t.equal(row?.n, 42);
  await plain.end();
  const [tlsRow] = await sql`select current_user as u`;
  t.equal(tlsRow?.u, 'postgres');
  t.ok(ward.logs.find({ msg: 'auth decision', rule: 'plain', result: 'accepted' }).length >= 1);
  t.ok(ward.logs.find({ msg: 'auth decision', rule: 'tls', result: 'accepted' }).length >= 1);
});

t.test('COPY in and out of 10 MB through postgres.js streams', async (t) => {
  const payload = makeCopyPayload();
  await sql`create table copy_pjs (id int, payload text)`;
  const writable = await sql`copy copy_pjs from stdin with (format csv)`.writable();
  await pipeline(Readable.from([Buffer.from(payload.text)]), writable);
  const [count] = await sql`select count(*)::int as n from copy_pjs`;
  t.equal(count?.n, payload.rows);
  const readable =
    await sql`copy (select * from copy_pjs order by id) to stdout with (format csv)`.readable();
  t.equal(await sha256OfStream(readable), payload.sha256, '10 MB came back byte for byte');
});

t.test('postgres.js prepared statements live in the upstream session', async (t) => {
  for (const n of [1, 2, 3]) {
    const [row] = await sql`select ${n}::int * 3 as v`;
    t.equal(row?.v, n * 3);
  }
  const [prepared] =
    await sql`select count(*)::int as n from pg_prepared_statements where statement = 'select $1::int * 3 as v'`;
  t.equal(prepared?.n, 1, 'one named statement, reused');
});

t.test('LISTEN/NOTIFY through postgres.js', async (t) => {
  const listener = connect(true);
  const received = new Promise<string>((resolve) => {
    void listener.listen('pjs_channel', (payload) => resolve(payload));
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  await sql.notify('pjs_channel', 'hello from postgres.js');
  t.equal(await received, 'hello from postgres.js');
  await listener.end({ timeout: 1 });
});

t.test('postgres.js query.cancel() cancels through pgward', async (t) => {
  const query = sql`select pg_sleep(30)`;
  const outcome = query.then(
    () => null,
    (error: { code?: string }) => error,
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const started = Date.now();
  query.cancel();
  const error = await outcome;
  t.equal(error?.code, '57014');
  t.ok(Date.now() - started < 5000);
});

t.test("a failing query's SQLSTATE reaches postgres.js unchanged", async (t) => {
  const error = await sql`select 1/0`.catch((e: { code?: string; message?: string }) => e);
  t.match(error, { code: '22012', message: 'division by zero' });
});
