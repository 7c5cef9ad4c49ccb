import fc from 'fast-check';
import t from 'tap';
import { MessageTracker } from '../../../src/wire/message-tracker.ts';

function typed(type: string, length: number): Buffer {
  const out = Buffer.alloc(5 + length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + length, 1);
  return out;
}

t.test('boundaries are found at the same places whatever the chunking', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 300 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (lengths, cuts) => {
        const stream = Buffer.concat(lengths.map((n) => typed('D', n)));
        const expected = new Set<number>();
        let at = 0;
        for (const n of lengths) {
          at += 5 + n;
          expected.add(at);
        }
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const tracker = new MessageTracker();
        let last = 0;
        for (const point of [...points, stream.length]) {
          const boundary = tracker.feed(stream.subarray(last, point));
          if (boundary > 0 && !expected.has(last + boundary)) return false;
          last = point;
          if (tracker.atBoundary !== (expected.has(point) || point === 0)) return false;
        }
        return tracker.lastType === 0x44;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('boundaries agree with the message lengths for 300 random chunkings');
});

t.test('feed returns 0 at a boundary and -1 inside a long message', async (t) => {
  const tracker = new MessageTracker();
  const big = typed('d', 1000);
  t.equal(tracker.feed(big.subarray(0, 10)), 0);
  t.equal(tracker.feed(big.subarray(10, 500)), -1);
  t.equal(tracker.feed(Buffer.concat([big.subarray(500), typed('Z', 1)])), 505);
  t.ok(tracker.atBoundary);
});
