import tls from 'node:tls';
import pg from 'pg';
import t, { type Test } from 'tap';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';
import { passwordMessage, RawClient, requestPacket, startupPacket } from '../helpers/raw-client.ts';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const PASSWORD = 'faults-secret';

const upstream = await startTestPostgres(t);
const hba = `rules:
  - { type: hostssl, address: 127.0.0.1/32, database: all, user: all, method: password }
  - { type: host, address: 127.0.0.1/32, database: all, user: all, method: password, allow_cleartext: true }
`;
const ward = await startTestPgward(t, {
  upstream,
  hba,
  users: { postgres: PASSWORD },
  limits: { auth_timeout_ms: 1500, max_message_length: 2048 },
});

async function expectFatal(t: Test, client: RawClient, sqlstate: string, message: string | RegExp, skip = 0) {
  const error = await client.waitForMessage('error', skip);
  t.match(error, { severity: 'FATAL', code: sqlstate, message }, `FATAL ${sqlstate}`);
  t.ok(await client.waitClosed(), 'the socket is closed');
}

function lengthOnly(length: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeInt32BE(length, 0);
  out.writeInt32BE(3 << 16, 4);
  return out;
}

t.test('an oversized startup length gets 08P01 and a closed socket', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(lengthOnly(10001));
  await expectFatal(t, client, '08P01', 'invalid length of startup packet');
});

t.test('an undersized startup length gets 08P01 and a closed socket', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(lengthOnly(7));
  await expectFatal(t, client, '08P01', 'invalid length of startup packet');
});

t.test('garbage (an HTTP request on the pg port) gets 08P01, never a hang', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await expectFatal(t, client, '08P01', 'invalid length of startup packet');
});

t.test('protocol 2.0 and 4.0 are refused with 0A000', async (t) => {
  for (const major of [2, 4]) {
    const client = await RawClient.connect(ward.port);
    client.send(startupPacket(major, 0, { user: 'postgres' }));
    await expectFatal(
      t,
      client,
      '0A000',
      `unsupported frontend protocol ${major}.0: server supports 3.0 to 3.2`,
    );
  }
});

t.test('a newer 3.x minor or _pq_ options get NegotiateProtocolVersion, never an error', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(startupPacket(3, 7, { user: 'postgres', database: 'postgres', '_pq_.future_thing': 'on' }));
  await client.waitForBytes(1);
  await client.waitForMessage('authenticationCleartextPassword');
  t.equal(client.received.toString('latin1', 0, 1), 'v', 'NegotiateProtocolVersion comes first');
  t.equal(client.received.readInt32BE(5), (3 << 16) | 2, 'newest supported: 3.2');
  t.equal(client.received.readInt32BE(9), 1);
  t.equal(client.received.toString('latin1', 13, 13 + '_pq_.future_thing'.length), '_pq_.future_thing');
  t.equal(client.messages().at(-1)?.name, 'authenticationCleartextPassword', 'authentication continues');
  client.destroy();
});

t.test('protocol 3.2 gets a 32-byte cancel key, 3.0 a 4-byte one', async (t) => {
  for (const [minor, keyLength] of [
    [0, 4],
    [2, 32],
  ] as const) {
    const client = await RawClient.connect(ward.port);
    client.send(startupPacket(3, minor, { user: 'postgres', database: 'postgres' }));
    await client.waitForMessage('authenticationCleartextPassword');
    client.send(passwordMessage(PASSWORD));
    await client.waitForMessage('readyForQuery');
    const at = client.received.indexOf(Buffer.from('K'));
    const keyData = client.messages().find((m) => m.name === 'backendKeyData');
    t.ok(keyData, 'BackendKeyData sent');
    const length = client.received.readInt32BE(client.received.lastIndexOf(Buffer.from([0x4b, 0, 0, 0])) + 1);
    t.equal(length, 8 + keyLength, `3.${minor}: ${keyLength}-byte key`);
    t.ok(at >= 0);
    client.destroy();
  }
});

t.test('a second StartupMessage is a protocol violation', async (t) => {
  const client = await RawClient.connect(ward.port);
  const startup = startupPacket(3, 0, { user: 'postgres', database: 'postgres' });
  client.send(Buffer.concat([startup, startup]));
  await expectFatal(t, client, '08P01', /^expected password response, got message type 0$/);
});

t.test('bytes smuggled after SSLRequest are refused (CVE-2021-23214 class)', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(Buffer.concat([requestPacket(SSL_REQUEST), startupPacket(3, 0, { user: 'postgres' })]));
  await client.waitForBytes(1);
  t.equal(client.received.toString('latin1', 0, 1), 'S');
  await expectFatal(t, client, '08P01', 'received unencrypted data after SSL request', 1);
});

t.test('GSSENCRequest gets N and the client may go on in clear', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(requestPacket(GSSENC_REQUEST));
  await client.waitForBytes(1);
  t.equal(client.received.toString('latin1'), 'N');
  client.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }));
  t.ok(await client.waitForMessage('authenticationCleartextPassword', 1));
  client.destroy();
});

t.test('a second GSSENCRequest is a protocol violation', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(Buffer.concat([requestPacket(GSSENC_REQUEST), requestPacket(GSSENC_REQUEST)]));
  await expectFatal(t, client, '08P01', 'GSSENCRequest received after encryption negotiation ended', 1);
});

t.test('an SSLRequest inside TLS is a protocol violation', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(requestPacket(SSL_REQUEST));
  await client.waitForBytes(1);
  const secure = tls.connect({ socket: client.socket, rejectUnauthorized: false });
  await new Promise((resolve) => secure.once('secureConnect', resolve));
  let received = Buffer.alloc(0);
  secure.on('data', (d) => {
    received = Buffer.concat([received, d]);
  });
  secure.write(requestPacket(SSL_REQUEST));
  await new Promise((resolve) => secure.once('close', resolve));
  t.match(received.toString('utf8'), 'SSLRequest received after TLS negotiation ended');
});

t.test('a typed message longer than max_message_length is refused', async (t) => {
  const client = await RawClient.connect(ward.port);
  client.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }));
  await client.waitForMessage('authenticationCleartextPassword');
  client.send(passwordMessage('x'.repeat(5000)));
  await expectFatal(t, client, '08P01', 'invalid message length');
});

t.test('a client that never finishes startup is cut off by the authentication timeout', async (t) => {
  const silent = await RawClient.connect(ward.port);
  const halfway = await RawClient.connect(ward.port);
  halfway.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }).subarray(0, 10));
  const prompted = await RawClient.connect(ward.port);
  prompted.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }));
  const started = Date.now();
  for (const client of [silent, halfway, prompted]) {
    await expectFatal(t, client, '57014', 'canceling authentication due to timeout');
  }
  const elapsed = Date.now() - started;
  t.ok(elapsed > 1000 && elapsed < 4000, `closed after about 1.5 s (${elapsed} ms)`);
});

t.test('a truncated packet followed by a hang-up leaves nothing behind', async (t) => {
  const before = ward.pgward.runtime.metrics.connectionsActive;
  const client = await RawClient.connect(ward.port);
  client.send(startupPacket(3, 0, { user: 'postgres' }).subarray(0, 12));
  client.socket.end();
  await client.waitClosed();
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(ward.pgward.runtime.metrics.connectionsActive, before);
});

t.test('500 connections dropped mid-startup while a real session keeps working', async (t) => {
  const session = new pg.Client({
    host: '127.0.0.1',
    port: ward.port,
    user: 'postgres',
    password: PASSWORD,
    database: 'postgres',
  });
  await session.connect();
  let queries = 0;
  let stop = false;
  const worker = (async () => {
    while (!stop) {
      const { rows } = await session.query('select $1::int as n', [queries]);
      if (rows[0].n !== queries) throw new Error('wrong answer');
      queries++;
    }
  })();
  const startup = startupPacket(3, 0, { user: 'postgres', database: 'postgres' });
  const drops = Array.from({ length: 500 }, async (_, i) => {
    const client = await RawClient.connect(ward.port);
    const kind = i % 4;
    if (kind === 1) client.send(startup.subarray(0, 1 + (i % startup.length)));
    if (kind === 2) client.send(Buffer.concat([requestPacket(SSL_REQUEST)]));
    if (kind === 3) client.send(startup);
    await new Promise((resolve) => setTimeout(resolve, i % 20));
    client.destroy();
  });
  await Promise.all(drops);
  await new Promise((resolve) => setTimeout(resolve, 300));
  stop = true;
  await worker;
  t.ok(queries > 10, `the session kept answering (${queries} queries)`);
  const { rows } = await session.query('select 1 as one');
  t.same(rows, [{ one: 1 }]);
  await session.end();
  const deadline = Date.now() + 3000;
  while (ward.pgward.runtime.metrics.connectionsActive > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal(ward.pgward.runtime.metrics.connectionsActive, 0, 'every dropped connection was cleaned up');
});

t.test('without TLS configured, SSLRequest gets N and the connection goes on in clear', async (t) => {
  const plain = await startTestPgward(t, { upstream, hba, users: { postgres: PASSWORD }, tls: false });
  const client = await RawClient.connect(plain.port);
  client.send(requestPacket(SSL_REQUEST));
  await client.waitForBytes(1);
  t.equal(client.received.toString('latin1'), 'N');
  client.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }));
  t.ok(await client.waitForMessage('authenticationCleartextPassword', 1));
  client.destroy();
});

t.test('past max_clients, new clients get 53300', async (t) => {
  const small = await startTestPgward(t, {
    upstream,
    hba,
    users: { postgres: PASSWORD },
    limits: { max_clients: 2 },
  });
  const held = [await RawClient.connect(small.port), await RawClient.connect(small.port)];
  await new Promise((resolve) => setTimeout(resolve, 50));
  const extra = await RawClient.connect(small.port);
  await expectFatal(t, extra, '53300', 'sorry, too many clients already');
  for (const client of held) client.destroy();
});
