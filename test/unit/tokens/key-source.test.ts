import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t, { type Test } from 'tap';
import { parseJwks, RemoteJwks } from '../../../src/tokens/key-source.ts';

const log = pino({ level: 'silent' });
const key = (kid: string) => ({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid });

/** A JWKS server whose answer and availability the test controls. */
async function jwksServer(t: Test) {
  const state = { keys: [key('a')], down: false, hits: 0, delayMs: 0 };
  const server = http.createServer((_request, response) => {
    state.hits++;
    if (state.down) {
      response.writeHead(503).end();
      return;
    }
    setTimeout(() => response.end(JSON.stringify({ keys: state.keys })), state.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks` };
}

t.test('fetched once on first use; concurrent callers share the fetch', async (t) => {
  const { state, url } = await jwksServer(t);
  state.delayMs = 50;
  const source = new RemoteJwks(url, { refreshMs: 60_000, cooldownMs: 60_000, timeoutMs: 1000, log });
  t.teardown(() => source.close());
  const [a, b] = await Promise.all([source.keys(), source.keys()]);
  t.same(a, [key('a')]);
  t.equal(a, b);
  t.equal(state.hits, 1);
});

t.test('kid misses refetch at most once per cooldown', async (t) => {
  const { state, url } = await jwksServer(t);
  const source = new RemoteJwks(url, { refreshMs: 60_000, cooldownMs: 200, timeoutMs: 1000, log });
  t.teardown(() => source.close());
  await source.keys();
  state.keys = [key('b')];
  t.equal(await source.refresh(), false, 'within the cooldown of the first fetch');
  t.equal(state.hits, 1);
  await new Promise((r) => setTimeout(r, 250));
  t.equal(await source.refresh(), true);
  t.same(await source.keys(), [key('b')]);
  t.equal(await source.refresh(), false, 'cooldown again');
  t.equal(state.hits, 2);
});

t.test('a failed fetch keeps the last good set; a set never fetched is an error', async (t) => {
  const { state, url } = await jwksServer(t);
  const source = new RemoteJwks(url, { refreshMs: 60_000, cooldownMs: 0, timeoutMs: 1000, log });
  t.teardown(() => source.close());
  await source.keys();
  state.down = true;
  t.equal(await source.refresh(), false);
  t.same(await source.keys(), [key('a')], 'still the last good set');
  const fresh = new RemoteJwks(url, { refreshMs: 60_000, cooldownMs: 0, timeoutMs: 1000, log });
  t.teardown(() => fresh.close());
  await t.rejects(fresh.keys(), /no key set could be fetched yet/);
});

t.test('the set is refreshed in the background', async (t) => {
  const { state, url } = await jwksServer(t);
  const source = new RemoteJwks(url, { refreshMs: 100, cooldownMs: 60_000, timeoutMs: 1000, log });
  t.teardown(() => source.close());
  await source.keys();
  state.keys = [key('c')];
  await new Promise((r) => setTimeout(r, 300));
  t.same(await source.keys(), [key('c')]);
  source.close();
  const hits = state.hits;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(state.hits, hits, 'no fetch after close');
});

t.test('JWKS documents: public keys only', async (t) => {
  t.throws(() => parseJwks({}, 'x'), /not a JWKS document/);
  t.throws(() => parseJwks({ keys: [] }, 'x'), /has no keys/);
  t.throws(
    () => parseJwks({ keys: [{ kty: 'RSA', n: 'n', e: 'AQAB', d: 'secret' }] }, 'x'),
    /private or symmetric/,
  );
  t.throws(() => parseJwks({ keys: [{ kty: 'oct', k: 'secret' }] }, 'x'), /private or symmetric/);
});
