import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import t, { type Test } from 'tap';
import { RelaySocket } from '../../../src/proxy/relay-socket.ts';

/** A loopback listener whose connections come in pairs: `near` is the one under test, `far` its peer. */
async function listener(t: Test): Promise<() => Promise<{ near: net.Socket; far: net.Socket }>> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => server.close());
  return async () => {
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const near = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    await new Promise((resolve) => near.once('connect', resolve));
    const far = await accepted;
    near.pause();
    t.teardown(() => {
      near.destroy();
      far.destroy();
    });
    return { near, far };
  };
}

async function socketPair(t: Test): Promise<{ near: net.Socket; far: net.Socket }> {
  return (await listener(t))();
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

t.test('chunks reach the peer in order, and reads arrive as chunks', async (t) => {
  const { near, far } = await socketPair(t);
  const received: Buffer[] = [];
  const relay = new RelaySocket(near, (chunk) => received.push(Buffer.from(chunk)));
  const arrived: Buffer[] = [];
  far.on('data', (chunk) => arrived.push(chunk));
  for (const word of ['one ', 'two ', 'three']) t.ok(relay.write(Buffer.from(word)));
  far.write('back');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(Buffer.concat(arrived).toString(), 'one two three');
  t.equal(Buffer.concat(received).toString(), 'back');
});

t.test('a peer that stops reading gets backpressure, then every byte in order', async (t) => {
  const { near, far } = await socketPair(t);
  const relay = new RelaySocket(near, () => {});
  far.pause();
  const sent: Buffer[] = [];
  let full = false;
  // Far more than the kernel buffers hold: the direct write must give way to Node's queue.
  for (let i = 0; i < 400 && !full; i++) {
    const chunk = randomBytes(64 * 1024);
    sent.push(chunk);
    full = !relay.write(chunk);
  }
  t.ok(full, 'write returns false once the queue passes its high-water mark');
  const drained = new Promise((resolve) => relay.socket.once('drain', resolve));
  const arrived: Buffer[] = [];
  far.on('data', (chunk) => arrived.push(chunk));
  far.resume();
  await drained;
  const total = sent.reduce((n, chunk) => n + chunk.length, 0);
  while (arrived.reduce((n, chunk) => n + chunk.length, 0) < total) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.equal(sha256(Buffer.concat(arrived)), sha256(Buffer.concat(sent)), 'same bytes, same order');
});

t.test('a view of a reused buffer is safe to pass: what is not written at once is copied', async (t) => {
  const { near, far } = await socketPair(t);
  const relay = new RelaySocket(near, () => {});
  far.pause();
  const scratch = Buffer.alloc(64 * 1024);
  const expected: Buffer[] = [];
  for (let i = 0; i < 200; i++) {
    scratch.fill(i % 251);
    expected.push(Buffer.from(scratch));
    relay.write(scratch);
  }
  const arrived: Buffer[] = [];
  far.on('data', (chunk) => arrived.push(chunk));
  far.resume();
  const total = expected.length * scratch.length;
  while (arrived.reduce((n, chunk) => n + chunk.length, 0) < total) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.equal(sha256(Buffer.concat(arrived)), sha256(Buffer.concat(expected)));
});

t.test('a write to a peer that reset destroys the socket with the error', async (t) => {
  const { near, far } = await socketPair(t);
  const relay = new RelaySocket(near, () => {});
  const errored = new Promise<Error>((resolve) => relay.socket.once('error', resolve));
  far.resetAndDestroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < 10 && !relay.socket.destroyed; i++) relay.write(Buffer.from('late'));
  t.match((await errored).message, /EPIPE|ECONNRESET/);
  t.ok(relay.socket.destroyed);
});

t.test('after its socket is destroyed, a write never reaches whoever got the descriptor next', async (t) => {
  const connect = await listener(t);
  const first = await connect();
  const relay = new RelaySocket(first.near, () => {});
  relay.socket.on('error', () => {});
  relay.socket.destroy();
  // The lowest free descriptors go to the next connection's two ends: one of them is likely the old one.
  const second = await connect();
  const leaked: Buffer[] = [];
  second.near.on('data', (chunk) => leaked.push(chunk));
  second.near.resume();
  second.far.on('data', (chunk) => leaked.push(chunk));
  relay.write(Buffer.from('must not leak'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(Buffer.concat(leaked).toString(), '');
});
