import fc from 'fast-check';
import t from 'tap';
import { PgError } from '../../../src/errors/pg-error.ts';
import { FrameReader } from '../../../src/wire/frame-reader.ts';
import { MAX_STARTUP_PACKET_LENGTH } from '../../../src/wire/limits.ts';

function startupPacket(body: Buffer): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(out.length, 0);
  body.copy(out, 4);
  return out;
}

function typed(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Splits a buffer at the given cut points. */
function chunk(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buffer.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const point of points) {
    out.push(buffer.subarray(last, point));
    last = point;
  }
  out.push(buffer.subarray(last));
  return out;
}

function readAll(reader: FrameReader, chunks: Buffer[]): { startup: string[]; messages: string[] } {
  const startup: string[] = [];
  const messages: string[] = [];
  let startupDone = false;
  for (const piece of chunks) {
    reader.push(piece);
    for (;;) {
      if (!startupDone) {
        const packet = reader.readStartupPacket();
        if (!packet) break;
        startup.push(packet.toString('hex'));
        startupDone = true;
      } else {
        const message = reader.readMessage();
        if (!message) break;
        messages.push(`${message.type}:${message.body.toString('hex')}`);
      }
    }
  }
  return { startup, messages };
}

t.test('any chunking of a valid byte stream parses identically', async (t) => {
  const arbitraryBody = fc.uint8Array({ minLength: 0, maxLength: 64 }).map((a) => Buffer.from(a));
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 4, maxLength: 200 }),
      fc.array(fc.tuple(fc.constantFrom('p', 'Q', 'X', 'd'), arbitraryBody), { maxLength: 10 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (startupBody, messages, cuts) => {
        const stream = Buffer.concat([
          startupPacket(Buffer.from(startupBody)),
          ...messages.map(([type, body]) => typed(type, body)),
        ]);
        const whole = readAll(new FrameReader(1024), [stream]);
        const pieces = readAll(new FrameReader(1024), chunk(stream, cuts));
        return JSON.stringify(pieces) === JSON.stringify(whole) && whole.messages.length === messages.length;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random streams, each cut at random points, parsed the same');
});

t.test('a bad length gives 08P01 as soon as the length word arrives, never a hang', async (t) => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: -(2 ** 31), max: 7 }),
        fc.integer({ min: MAX_STARTUP_PACKET_LENGTH + 1, max: 2 ** 31 - 1 }),
      ),
      (length) => {
        const reader = new FrameReader(1024);
        const header = Buffer.alloc(4);
        header.writeInt32BE(length, 0);
        reader.push(header);
        try {
          reader.readStartupPacket();
          return false;
        } catch (error) {
          return error instanceof PgError && error.sqlstate === '08P01';
        }
      },
    ),
  );
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: -(2 ** 31), max: 3 }), fc.integer({ min: 1025, max: 2 ** 31 - 1 })),
      (length) => {
        const reader = new FrameReader(1024);
        const header = Buffer.alloc(5);
        header.write('p', 0);
        header.writeInt32BE(length, 1);
        reader.push(header);
        try {
          reader.readMessage();
          return false;
        } catch (error) {
          return error instanceof PgError && error.sqlstate === '08P01';
        }
      },
    ),
  );
  t.pass('every out-of-range length word is refused with 08P01 at once');
});

t.test('startup packet limits are 8 and 10000 bytes inclusive', async (t) => {
  for (const length of [8, MAX_STARTUP_PACKET_LENGTH]) {
    const reader = new FrameReader(1024);
    reader.push(startupPacket(Buffer.alloc(length - 4)));
    t.equal(reader.readStartupPacket()?.length, length - 4, `length ${length} accepted`);
  }
  for (const length of [7, MAX_STARTUP_PACKET_LENGTH + 1]) {
    const reader = new FrameReader(1024);
    const header = Buffer.alloc(4);
    header.writeInt32BE(length, 0);
    reader.push(header);
    t.throws(() => reader.readStartupPacket(), {
      sqlstate: '08P01',
      message: 'invalid length of startup packet',
    });
  }
});

t.test('typed message limit is the configured maximum, length word included', async (t) => {
  const reader = new FrameReader(100);
  reader.push(typed('p', Buffer.alloc(96)));
  t.equal(reader.readMessage()?.body.length, 96);
  reader.push(typed('p', Buffer.alloc(97)));
  t.throws(() => reader.readMessage(), { name: 'PgError', sqlstate: '08P01' });
});

t.test('a truncated frame stays pending and the rest is kept for the relay', async (t) => {
  const reader = new FrameReader(1024);
  const stream = Buffer.concat([typed('p', Buffer.from('abc')), Buffer.from('Q\0\0')]);
  reader.push(stream);
  t.equal(reader.readMessage()?.body.toString(), 'abc');
  t.equal(reader.readMessage(), null);
  t.equal(reader.takeRemaining().toString('latin1'), 'Q\0\0');
  t.equal(reader.bufferedLength, 0);
});
