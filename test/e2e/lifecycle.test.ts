import net from 'node:net';
import pg from 'pg';
import t from 'tap';
import { psql } from '../helpers/clients.ts';
import { startTestPgward, TRUST_ALL } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';
import { queryMessage, RawClient, startupPacket } from '../helpers/raw-client.ts';
import { startTcpForwarder } from '../helpers/tcp-forwarder.ts';

const upstream = await startTestPostgres(t);

function connectTo(port: number, applicationName = 'lifecycle'): pg.Client {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    application_name: applicationName,
  });
  client.on('error', () => {});
  return client;
}

async function backendsNamed(name: string): Promise<number> {
  const { rows } = await upstream.query(
    'select count(*)::int as n from pg_stat_activity where application_name = $1',
    [name],
  );
  return rows[0].n as number;
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

t.test('startup parameters reach the upstream session', async (t) => {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
  const client = new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    database: 'postgres',
    application_name: 'forwarded-name',
    options: '-c search_path=pg_catalog -c statement_timeout=12345',
  });
  await client.connect();
  const { rows } = await client.query(
    "select current_setting('application_name') as app, current_setting('search_path') as path, current_setting('statement_timeout') as st",
  );
  t.same(rows, [{ app: 'forwarded-name', path: 'pg_catalog', st: '12345ms' }]);
  await client.end();
});

t.test(
  'upstream down: clients get FATAL 08006 naming the upstream, and pgward serves them again once it is back',
  async (t) => {
    const ward = await startTestPgward(t, {
      upstream,
      hba: TRUST_ALL,
      tls: false,
      upstreamExtra: 'connect_timeout_ms: 1000',
    });
    await upstream.stop();
    try {
      const failed = await connectTo(ward.port)
        .connect()
        .catch((error: pg.DatabaseError) => error);
      t.match(failed, {
        code: '08006',
        message: `could not connect to upstream server "127.0.0.1:${upstream.port}"`,
      });
      const viaPsql = await psql(`host=127.0.0.1 port=${ward.port} user=postgres dbname=postgres`, [
        '-c',
        'select 1',
      ]);
      t.match(viaPsql.stderr, `FATAL:  could not connect to upstream server "127.0.0.1:${upstream.port}"`);
      t.equal(ward.pgward.runtime.metrics.upstreamFailures, 2);
    } finally {
      await upstream.start();
    }
    const client = connectTo(ward.port);
    await client.connect();
    t.same((await client.query('select 1 as one')).rows, [{ one: 1 }], 'the same pgward serves again');
    await client.end();
  },
);

t.test('an upstream that accepts and never answers the login: 08006 after the connect timeout', async (t) => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const port = (silent.address() as net.AddressInfo).port;
  const ward = await startTestPgward(t, {
    upstream: { host: '127.0.0.1', port, user: 'postgres', password: 'x' },
    hba: TRUST_ALL,
    tls: false,
    upstreamExtra: 'connect_timeout_ms: 400',
    limits: { max_pending_auth: 1 },
  });
  for (const attempt of [1, 2]) {
    const started = Date.now();
    const failed = await connectTo(ward.port)
      .connect()
      .catch((error: pg.DatabaseError) => error);
    t.match(failed, { code: '08006', detail: 'no answer to the login within 400 ms' }, `attempt ${attempt}`);
    t.ok(Date.now() - started < 3000, 'within the timeout, not never');
  }
  t.equal(sockets.length, 2, 'the second login got its own try: the first released its place');
});

t.test('an upstream login error (unknown database) reaches the client unchanged', async (t) => {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
  const client = new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    database: 'no_such_db',
  });
  const error = await client.connect().catch((e: pg.DatabaseError) => e);
  t.match(error, { code: '3D000', message: 'database "no_such_db" does not exist', severity: 'FATAL' });
});

t.test('an upstream backend terminated mid-session ends only that client', async (t) => {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
  const victim = connectTo(ward.port, 'victim');
  const bystander = connectTo(ward.port, 'bystander');
  await victim.connect();
  await bystander.connect();
  const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  const ended = new Promise<Error>((resolve) => victim.once('error', resolve));
  await upstream.query('select pg_terminate_backend($1)', [pid]);
  const error = (await ended) as pg.DatabaseError;
  t.equal(error.code, '57P01', "PostgreSQL's own FATAL reaches the client");
  t.same((await bystander.query('select 2 as two')).rows, [{ two: 2 }], 'the other session is untouched');
  await bystander.end();
});

t.test(
  'an upstream connection cut without a word gets the client a FATAL 08006 and a closed socket',
  async (t) => {
    const forwarder = await startTcpForwarder(t, upstream.port);
    const ward = await startTestPgward(t, {
      upstream: { ...upstream, port: forwarder.port },
      hba: TRUST_ALL,
      tls: false,
    });
    const direct = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
    const victim = connectTo(ward.port);
    const bystander = connectTo(direct.port);
    await victim.connect();
    await bystander.connect();
    const ended = new Promise<Error>((resolve) => victim.once('error', resolve));
    forwarder.cutAll();
    const error = (await ended) as pg.DatabaseError;
    t.match(error, { code: '08006', message: 'upstream server closed the connection unexpectedly' });
    t.same((await bystander.query('select 3 as three')).rows, [{ three: 3 }]);
    await bystander.end();
    const client = connectTo(ward.port);
    await client.connect();
    t.same((await client.query('select 4 as four')).rows, [{ four: 4 }], 'pgward keeps serving new clients');
    await client.end();
  },
);

t.test('a client that disconnects takes its upstream connection with it', async (t) => {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
  const client = connectTo(ward.port, 'leaver');
  await client.connect();
  await client.query('select 1');
  t.equal(await backendsNamed('leaver'), 1);
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  t.ok(await eventually(async () => (await backendsNamed('leaver')) === 0), 'the upstream backend is gone');
  const polite = connectTo(ward.port, 'polite');
  await polite.connect();
  await polite.end();
  t.ok(await eventually(async () => (await backendsNamed('polite')) === 0), 'Terminate is relayed too');
});

t.test('shutdown ends every session with FATAL 57P01, mid-query or idle', async (t) => {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
  const busy = connectTo(ward.port);
  const idle = connectTo(ward.port);
  await busy.connect();
  await idle.connect();
  const busyError = busy.query('select pg_sleep(30)').catch((e: pg.DatabaseError) => e);
  const idleError = new Promise<Error>((resolve) => idle.once('error', resolve));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await ward.close();
  t.match(await busyError, { code: '57P01', message: 'terminating connection due to administrator command' });
  t.match(await idleError, { code: '57P01' });
  const after = await connectTo(ward.port)
    .connect()
    .catch((e: Error) => e);
  t.ok(after instanceof Error, 'nothing listens any more');
});

t.test('every auth decision is logged with the rule that made it and the connection id', async (t) => {
  const ward = await startTestPgward(t, {
    upstream,
    tls: false,
    hba: `rules:
  - { name: refuse-intruder, type: host, address: all, database: all, user: intruder, method: reject }
  - { name: let-in, type: host, address: 127.0.0.1/32, database: all, user: all, method: trust }
`,
  });
  const refused = await new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'intruder',
    database: 'postgres',
  })
    .connect()
    .catch((e: pg.DatabaseError) => e);
  t.match(refused, {
    code: '28000',
    message:
      'pg_hba.conf rejects connection for host "127.0.0.1", user "intruder", database "postgres", no encryption',
  });
  const reject = await ward.logs.waitFor({ msg: 'auth decision', result: 'rejected' });
  t.match(reject, { rule: 'refuse-intruder', line: 2, method: 'reject', user: 'intruder', conn: /^c\d+$/ });
  const allowed = connectTo(ward.port);
  await allowed.connect();
  await allowed.end();
  const accept = await ward.logs.waitFor({ msg: 'auth decision', result: 'accepted' });
  t.match(accept, { rule: 'let-in', line: 3, method: 'trust' });
  await ward.logs.waitFor({ msg: 'session ended', conn: accept.conn });
  const sameConnection = ward.logs.lines.filter((line) => line.conn === accept.conn).map((line) => line.msg);
  t.same(
    sameConnection.filter((msg) => msg !== 'relay closing'),
    ['connection accepted', 'auth decision', 'upstream login', 'session started', 'session ended'],
    'every line of the connection carries its id',
  );
});

/** Counts backend messages by type in a stream, keeping no payload (an independent reader for the test). */
class MessageCounter {
  readonly counts = new Map<string, number>();
  #header = Buffer.alloc(0);
  #remaining = 0;

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#remaining > 0) {
        const step = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= step;
        i += step;
        continue;
      }
      const take = Math.min(5 - this.#header.length, chunk.length - i);
      this.#header = Buffer.concat([this.#header, chunk.subarray(i, i + take)]);
      i += take;
      if (this.#header.length === 5) {
        const type = String.fromCharCode(this.#header[0] ?? 0);
        this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
        this.#remaining = this.#header.readInt32BE(1) - 4;
        this.#header = Buffer.alloc(0);
      }
    }
  }
}

t.test('a client that stops reading pushes back on the upstream instead of filling pgward', async (t) => {
  const ward = await startTestPgward(t, { upstream, hba: TRUST_ALL, tls: false });
  const client = await RawClient.connect(ward.port);
  client.send(
    startupPacket(3, 0, { user: 'postgres', database: 'postgres', application_name: 'slow-reader' }),
  );
  await client.waitForMessage('readyForQuery');
  const rows = 40_000;
  const counter = new MessageCounter();
  client.socket.removeAllListeners('data');
  client.socket.on('data', (chunk: Buffer) => counter.feed(chunk));
  client.socket.pause();
  const rss = process.memoryUsage().rss;
  client.send(queryMessage(`select repeat('x', 1000) from generate_series(1, ${rows})`));
  const blocked = await eventually(async () => {
    const { rows: activity } = await upstream.query(
      "select wait_event from pg_stat_activity where application_name = 'slow-reader'",
    );
    return activity[0]?.wait_event === 'ClientWrite';
  });
  t.ok(blocked, 'the upstream backend waits on ClientWrite while the client does not read');
  t.ok(process.memoryUsage().rss - rss < 32 * 1024 * 1024, 'pgward holds far less than the 40 MB result');
  client.socket.resume();
  t.ok(
    await eventually(async () => counter.counts.get('Z') === 1, 20_000),
    'the result completes once the client reads',
  );
  t.equal(counter.counts.get('D'), rows, 'every row arrived');
  client.destroy();
});
