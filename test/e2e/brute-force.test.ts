/**
 * Brute force: after `after` failures for one (address, user), each further failure is answered
 * later and later; other users and addresses are unaffected, a success resets the count. Connections
 * still authenticating are capped (53300).
 */

import { serialize } from 'pg-protocol';
import t from 'tap';
import { startTestPgward } from '../helpers/pgward.ts';
import { startTestPostgres } from '../helpers/postgres.ts';
import { RawClient, startupPacket } from '../helpers/raw-client.ts';

const upstream = await startTestPostgres(t);
const ward = await startTestPgward(t, {
  upstream,
  hba: `rules:
  - { type: host, address: all, database: all, user: all, method: password, allow_cleartext: true }
`,
  users: { alice: 'alice pw', bob: 'bob pw' },
  login: `{ mode: service, user: ${upstream.user}, password: ${JSON.stringify(upstream.password)} }`,
  listen: ['127.0.0.1:0', '[::1]:0'],
  limits: { auth_failure_delay: '{ after: 2, initial_ms: 400, max_ms: 800 }', max_pending_auth: 3 },
});

/** Logs in with a cleartext password; resolves with the outcome and how long the answer took. */
async function attempt(user: string, password: string, host = '127.0.0.1', port = ward.port) {
  const client = await RawClient.connect(port, host);
  client.send(startupPacket(3, 0, { user, database: 'postgres' }));
  await client.waitForMessage('authenticationCleartextPassword');
  const sent = Date.now();
  client.send(serialize.password(password));
  for (;;) {
    const messages = client.messages();
    const error = messages.find((m) => m.name === 'error');
    if (error || messages.some((m) => m.name === 'readyForQuery') || client.socket.closed) {
      client.destroy();
      return { ok: !error, code: error?.code, ms: Date.now() - sent };
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

t.test('failures beyond the threshold are answered later, doubling up to the maximum', async (t) => {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const result = await attempt('alice', 'wrong');
    t.equal(result.code, '28P01');
    times.push(result.ms);
  }
  t.ok((times[0] ?? 0) < 300 && (times[1] ?? 0) < 300, `the first two answer at once (${times})`);
  t.ok((times[2] ?? 0) >= 390, `the third waits initial_ms (${times[2]} ms)`);
  t.ok((times[3] ?? 0) >= 790, `the fourth waits twice that (${times[3]} ms)`);
  t.ok((times[4] ?? 0) >= 790 && (times[4] ?? 0) < 1500, `capped at max_ms (${times[4]} ms)`);
  t.ok(ward.logs.find({ msg: 'repeated authentication failures: delaying the answer' }).length >= 3);

  const other = await attempt('bob', 'wrong');
  t.ok(other.ms < 300, 'another user from the same address is not delayed');
  const otherAddress = await attempt('alice', 'wrong', '::1', ward.addresses[1]?.port);
  t.ok(otherAddress.ms < 300, 'the same user from another address is not delayed');

  const success = await attempt('alice', 'alice pw');
  t.equal(success.ok, true, 'the right password still gets in, without delay');
  t.ok(success.ms < 300);
  const afterSuccess = await attempt('alice', 'wrong');
  t.ok(afterSuccess.ms < 300, 'a success resets the count');
});

t.test('connections still authenticating are capped; authenticated ones are not counted', async (t) => {
  const session = await RawClient.connect(ward.port);
  session.send(startupPacket(3, 0, { user: 'bob', database: 'postgres' }));
  await session.waitForMessage('authenticationCleartextPassword');
  session.send(serialize.password('bob pw'));
  t.ok(await session.waitForMessage('readyForQuery'), 'one session is running');

  const pending: RawClient[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await RawClient.connect(ward.port);
    client.send(startupPacket(3, 0, { user: 'bob', database: 'postgres' }));
    await client.waitForMessage('authenticationCleartextPassword');
    pending.push(client);
  }
  const refused = await RawClient.connect(ward.port);
  t.ok(await refused.waitClosed(), 'the fourth pending connection is closed');
  const error = refused.messages().find((m) => m.name === 'error');
  t.same([error?.code, error?.message], ['53300', 'sorry, too many clients already']);

  pending[0]?.send(serialize.password('bob pw'));
  t.ok(await pending[0]?.waitForMessage('readyForQuery'), 'a pending connection authenticates');
  const admitted = await attempt('bob', 'bob pw');
  t.equal(admitted.ok, true, 'its place is free again');
  for (const client of [session, ...pending]) client.destroy();
});
