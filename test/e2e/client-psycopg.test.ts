import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { python } from '../helpers/clients.ts';
import { makeCopyPayload } from '../helpers/payload.ts';
import { PASSWORD_TLS_AND_PLAIN, startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const upstream = await startTestPostgres(t);
const PASSWORD = 'client-secret-psycopg';
const ward = await startTestPgward(t, {
  upstream,
  hba: PASSWORD_TLS_AND_PLAIN,
  users: { postgres: PASSWORD },
});
const base = `host=127.0.0.1 port=${ward.port} user=postgres dbname=postgres password=${PASSWORD}`;
const TLS = `${base} sslmode=verify-full sslrootcert=${ward.certFile}`;
const PLAIN = `${base} sslmode=disable`;

/** Runs a psycopg 3 snippet (DSN in scope) and returns what it printed as JSON. */
async function psycopg(body: string, dsn = TLS): Promise<unknown> {
  const script = `import json, os, sys, threading, time, psycopg\nDSN = os.environ['DSN']\n${body}`;
  const result = await python(script, { DSN: dsn, PAYLOAD: path.join(ward.dir, 'payload.csv') });
  if (result.code !== 0) throw new Error(`python failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

t.test('psycopg 3 connects plain and over verified TLS', async (t) => {
  for (const dsn of [PLAIN, TLS]) {
    const out = await psycopg(
      `with psycopg.connect(DSN) as conn:\n    print(json.dumps(conn.execute("select 40 + 2, current_user").fetchone()))`,
      dsn,
    );
    t.same(out, [42, 'postgres']);
  }
  t.ok(ward.logs.find({ msg: 'auth decision', rule: 'plain', result: 'accepted' }).length >= 1);
  t.ok(ward.logs.find({ msg: 'auth decision', rule: 'tls', result: 'accepted' }).length >= 1);
});

t.test('COPY in and out of 10 MB through psycopg', async (t) => {
  const payload = makeCopyPayload();
  await writeFile(path.join(ward.dir, 'payload.csv'), payload.text);
  const out = await psycopg(`
import hashlib
with psycopg.connect(DSN) as conn:
    conn.execute("create table copy_py (id int, payload text)")
    with open(os.environ['PAYLOAD'], 'rb') as f, conn.cursor().copy("copy copy_py from stdin with (format csv)") as copy:
        while data := f.read(65536):
            copy.write(data)
    count = conn.execute("select count(*) from copy_py").fetchone()[0]
    digest = hashlib.sha256()
    with conn.cursor().copy("copy (select * from copy_py order by id) to stdout with (format csv)") as copy:
        for block in copy:
            digest.update(block)
    print(json.dumps([count, digest.hexdigest()]))
`);
  t.same(out, [payload.rows, payload.sha256]);
});

t.test('a server-side prepared statement through psycopg', async (t) => {
  const out = await psycopg(`
with psycopg.connect(DSN, prepare_threshold=0) as conn:
    values = [conn.execute("select %s::int * 4", (n,)).fetchone()[0] for n in (1, 2, 3)]
    prepared = conn.execute("select count(*) from pg_prepared_statements where statement = 'select $1::int * 4'").fetchone()[0]
    print(json.dumps([values, prepared]))
`);
  t.same(out, [[4, 8, 12], 1]);
});

t.test('LISTEN/NOTIFY through psycopg', async (t) => {
  const out = await psycopg(`
with psycopg.connect(DSN, autocommit=True) as listener, psycopg.connect(DSN, autocommit=True) as sender:
    listener.execute("listen py_channel")
    sender.execute("notify py_channel, 'hello from psycopg'")
    note = next(listener.notifies())
    print(json.dumps([note.channel, note.payload]))
`);
  t.same(out, ['py_channel', 'hello from psycopg']);
});

t.test('psycopg conn.cancel() cancels a running query through pgward', async (t) => {
  const out = await psycopg(`
with psycopg.connect(DSN) as conn:
    threading.Timer(0.3, conn.cancel).start()
    started = time.time()
    try:
        conn.execute("select pg_sleep(30)")
        print(json.dumps(["not cancelled"]))
    except psycopg.errors.QueryCanceled as e:
        print(json.dumps([e.sqlstate, time.time() - started < 5]))
`);
  t.same(out, ['57014', true]);
});

t.test("a failing query's SQLSTATE reaches psycopg unchanged", async (t) => {
  const out = await psycopg(`
with psycopg.connect(DSN) as conn:
    try:
        conn.execute("select 1/0")
    except psycopg.Error as e:
        print(json.dumps([e.sqlstate, type(e).__name__]))
`);
  t.same(out, ['22012', 'DivisionByZero']);
});
