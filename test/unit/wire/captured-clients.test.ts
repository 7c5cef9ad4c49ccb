import { readdirSync, readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { FrameReader } from '../../../src/wire/frame-reader.ts';
import { parseStartupPacket, readStartupIdentity, type StartupPacket } from '../../../src/wire/frontend.ts';

/** What real clients sent before authentication (fixtures/wire/capture.ts records them). */
interface Capture {
  client: string;
  how: string;
  packets: string[];
}

const DIR = new URL('../../../fixtures/wire/startup/', import.meta.url);
const captures = readdirSync(DIR)
  .filter((name) => name.endsWith('.json'))
  .map((name) => [name, JSON.parse(readFileSync(new URL(name, DIR), 'utf8')) as Capture] as const);

/** What each capture must parse to. */
const EXPECTED: Record<
  string,
  { kinds: StartupPacket['kind'][]; user: string; params: Record<string, string> }
> = {
  'psql-ssl-prefer.json': {
    kinds: ['SSLRequest', 'StartupMessage'],
    user: 'alice',
    params: { database: 'shop', application_name: 'capture', options: '-csearch_path=app' },
  },
  'psql-replication.json': { kinds: ['StartupMessage'], user: 'repl', params: { replication: 'database' } },
  'pg.json': {
    kinds: ['StartupMessage'],
    user: 'alice',
    params: { database: 'shop', application_name: 'capture' },
  },
  'postgres-js.json': {
    kinds: ['StartupMessage'],
    user: 'alice',
    params: { database: 'shop', application_name: 'capture' },
  },
  'psycopg.json': {
    kinds: ['SSLRequest', 'StartupMessage'],
    user: 'alice',
    params: { database: 'shop', application_name: 'capture' },
  },
};

function parseAll(stream: Buffer, cuts: number[]): StartupPacket[] {
  const reader = new FrameReader(1 << 20);
  const packets: StartupPacket[] = [];
  let last = 0;
  for (const point of [...cuts, stream.length]) {
    reader.push(stream.subarray(last, point));
    last = point;
    for (let body = reader.readStartupPacket(); body; body = reader.readStartupPacket()) {
      packets.push(parseStartupPacket(body));
    }
  }
  return packets;
}

t.test('every capture has an expectation and every expectation a capture', async (t) => {
  t.same(captures.map(([name]) => name).sort(), Object.keys(EXPECTED).sort());
});

for (const [name, capture] of captures) {
  t.test(`${capture.client} (${capture.how}) parses the same under any chunking`, async (t) => {
    const expected = EXPECTED[name];
    if (!expected) {
      t.fail(`no expectation for ${name}`);
      return;
    }
    const stream = Buffer.concat(capture.packets.map((hex) => Buffer.from(hex, 'hex')));
    const whole = parseAll(stream, []);
    t.same(
      whole.map((p) => p.kind),
      expected.kinds,
    );
    const startup = whole.at(-1);
    if (startup?.kind !== 'StartupMessage') {
      t.fail('no StartupMessage');
      return;
    }
    t.same(startup.requested, { major: 3, minor: 0 });
    t.equal(readStartupIdentity(startup).user, expected.user);
    for (const [key, value] of Object.entries(expected.params))
      t.equal(startup.parameters.get(key), value, key);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) =>
        isDeepStrictEqual(
          parseAll(
            stream,
            cuts.sort((a, b) => a - b),
          ),
          whole,
        ),
      ),
      { numRuns: 100 },
    );
    t.pass('100 random chunkings parse to the same packets');
  });
}
