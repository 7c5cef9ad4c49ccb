import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import t from 'tap';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';
import { passwordMessage, queryMessage, RawClient, startupPacket } from '../helpers/raw-client.ts';

const PASSWORD = 'tls-secret';
const upstream = await startTestPostgres(t);
const hba = `rules:
  - { name: tls-only, type: hostssl, address: 127.0.0.1/32, database: all, user: all, method: password }
`;
const ward = await startTestPgward(t, { upstream, hba, users: { postgres: PASSWORD } });

function directTls(
  port: number,
  alpn: string[] | undefined,
): Promise<{ socket: tls.TLSSocket | null; error: Error | null }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(ward.certFile),
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    socket.once('secureConnect', () => resolve({ socket, error: null }));
    socket.once('error', (error) => resolve({ socket: null, error }));
  });
}

t.test('direct TLS with ALPN "postgresql" logs in and runs a query', async (t) => {
  const { socket, error } = await directTls(ward.port, ['postgresql']);
  t.equal(error, null);
  if (!socket) return;
  t.equal(socket.alpnProtocol, 'postgresql');
  const client = RawClient.wrap(socket);
  const decision = ward.logs.next({ msg: 'auth decision' });
  client.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }));
  await client.waitForMessage('authenticationCleartextPassword');
  client.send(passwordMessage(PASSWORD));
  await client.waitForMessage('readyForQuery');
  client.send(queryMessage('select 6 * 7'));
  const row = await client.waitForMessage('dataRow');
  t.same(row?.fields, ['42']);
  t.match(await decision, { result: 'accepted', tls: true, rule: 'tls-only' });
  client.destroy();
});

t.test('direct TLS without ALPN is refused', async (t) => {
  const refused = ward.logs.next({
    reason: 'received direct SSL connection request without ALPN protocol negotiation extension',
  });
  const { socket } = await directTls(ward.port, undefined);
  if (socket) {
    const client = RawClient.wrap(socket);
    client.send(startupPacket(3, 0, { user: 'postgres', database: 'postgres' }));
    t.ok(await client.waitClosed(), 'closed');
    t.equal(client.received.length, 0, 'not a byte of the protocol is spoken');
  }
  t.ok(await refused, 'the reason is logged');
});

t.test('direct TLS offering only another ALPN protocol fails the handshake', async (t) => {
  const { error } = await directTls(ward.port, ['http/1.1']);
  t.match(error?.message, /no application protocol/);
});

t.test('a listener with direct: false refuses direct TLS', async (t) => {
  const noDirect = await startTestPgward(t, { upstream, hba, users: { postgres: PASSWORD } });
  const config = noDirect.pgward.runtime.config;
  const tlsConfig = config.listen.tls;
  if (!tlsConfig || !noDirect.pgward.runtime.tls) throw new Error('tls expected');
  noDirect.pgward.runtime.tls.reload({ ...tlsConfig, direct: false });
  const { error } = await directTls(noDirect.port, ['postgresql']);
  t.ok(error, `handshake fails: ${error?.message}`);
  t.ok(await noDirect.logs.waitFor({ error: 'direct TLS connections are not accepted here' }));
});

t.test('the TLS context reloads for new handshakes', async (t) => {
  const before = await directTls(ward.port, ['postgresql']);
  const firstCert = before.socket?.getPeerCertificate().fingerprint256;
  before.socket?.destroy();
  const { generateSelfSignedCertificate } = await import('../../src/tls/self-signed.ts');
  const { writeFile } = await import('node:fs/promises');
  const renewed = await generateSelfSignedCertificate('localhost');
  const tlsConfig = ward.pgward.runtime.config.listen.tls;
  if (!tlsConfig) throw new Error('tls expected');
  await writeFile(tlsConfig.certFile, renewed.certPem);
  await writeFile(tlsConfig.keyFile, renewed.keyPem);
  ward.pgward.runtime.tls?.reload();
  const after = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: ward.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['postgresql'],
    });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
  t.not(after.getPeerCertificate().fingerprint256, firstCert, 'the renewed certificate is served');
  after.destroy();
});
