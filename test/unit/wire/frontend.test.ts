import t from 'tap';
import {
  parsePasswordMessage,
  parseSaslInitialResponse,
  parseStartupPacket,
  readStartupIdentity,
  type StartupMessage,
} from '../../../src/wire/frontend.ts';

function startupBody(version: number, pairs: [string, string][], terminator = true): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(version >>> 0, 0);
  const text = pairs.map(([k, v]) => `${k}\0${v}\0`).join('') + (terminator ? '\0' : '');
  return Buffer.concat([head, Buffer.from(text)]);
}

const V3_0 = 3 << 16;

t.test('StartupMessage 3.0 and 3.2 parse parameters in order and split out _pq_ options', async (t) => {
  for (const minor of [0, 2]) {
    const packet = parseStartupPacket(
      startupBody(V3_0 | minor, [
        ['user', 'alice'],
        ['database', 'db'],
        ['_pq_.compression', 'on'],
        ['application_name', 'x'],
      ]),
    ) as StartupMessage;
    t.equal(packet.kind, 'StartupMessage');
    t.same(packet.requested, { major: 3, minor });
    t.same([...packet.parameters.keys()], ['user', 'database', 'application_name']);
    t.same(packet.protocolOptions, ['_pq_.compression']);
  }
});

t.test('special request codes are recognized', async (t) => {
  const code = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  };
  t.same(parseStartupPacket(code(80877103)), { kind: 'SSLRequest' });
  t.same(parseStartupPacket(code(80877104)), { kind: 'GSSENCRequest' });
  const cancel = Buffer.concat([code(80877102), code(1234), Buffer.from('abcd')]);
  t.match(parseStartupPacket(cancel), { kind: 'CancelRequest', processId: 1234 });
  const longCancel = Buffer.concat([code(80877102), code(9), Buffer.alloc(32, 7)]);
  t.equal(
    (parseStartupPacket(longCancel) as { secretKey: Buffer }).secretKey.length,
    32,
    '3.2 cancel keys up to 256 bytes',
  );
  t.throws(() => parseStartupPacket(Buffer.concat([code(80877102), code(9), Buffer.alloc(257)])), {
    name: 'PgError',
    sqlstate: '08P01',
  });
  t.throws(() => parseStartupPacket(Buffer.concat([code(80877102), code(9)])), {
    name: 'PgError',
    sqlstate: '08P01',
  });
});

t.test('protocol majors other than 3 are refused with 0A000', async (t) => {
  t.throws(() => parseStartupPacket(startupBody(2 << 16, [['user', 'a']])), {
    sqlstate: '0A000',
    message: 'unsupported frontend protocol 2.0: server supports 3.0 to 3.2',
  });
  t.throws(() => parseStartupPacket(startupBody(4 << 16, [['user', 'a']])), {
    name: 'PgError',
    sqlstate: '0A000',
  });
});

t.test('a StartupMessage without its terminator is a protocol violation', async (t) => {
  t.throws(() => parseStartupPacket(startupBody(V3_0, [['user', 'a']], false)), {
    sqlstate: '08P01',
    message: 'invalid startup packet layout: expected terminator as last byte',
  });
  t.throws(() => parseStartupPacket(Buffer.concat([startupBody(V3_0, [['user', 'a']]), Buffer.from('x')])), {
    name: 'PgError',
    sqlstate: '08P01',
  });
  t.throws(() => parseStartupPacket(Buffer.concat([startupBody(V3_0, [], false), Buffer.from('user\0a')])), {
    name: 'PgError',
    sqlstate: '08P01',
  });
});

t.test('identity: user required, database defaults to user, names truncated to 63 bytes', async (t) => {
  const parse = (pairs: [string, string][]) =>
    readStartupIdentity(parseStartupPacket(startupBody(V3_0, pairs)) as StartupMessage);
  t.throws(() => parse([['database', 'x']]), {
    sqlstate: '28000',
    message: 'no PostgreSQL user name specified in startup packet',
  });
  t.same(parse([['user', 'bob']]), { user: 'bob', database: 'bob', replication: false });
  t.equal(parse([['user', 'u'.repeat(100)]]).user.length, 63);
  t.equal(Buffer.byteLength(parse([['user', 'é'.repeat(40)]]).user), 62, 'cut at a character boundary');
  t.equal(
    parse([
      ['user', 'a'],
      ['replication', 'database'],
    ]).replication,
    'logical',
  );
  t.equal(
    parse([
      ['user', 'a'],
      ['replication', 'true'],
    ]).replication,
    'physical',
  );
  t.equal(
    parse([
      ['user', 'a'],
      ['replication', 'off'],
    ]).replication,
    false,
  );
  t.throws(
    () =>
      parse([
        ['user', 'a'],
        ['replication', 'maybe'],
      ]),
    { name: 'PgError', sqlstate: '22023' },
  );
});

t.test('PasswordMessage and SASLInitialResponse bodies', async (t) => {
  t.equal(parsePasswordMessage(Buffer.from('secret\0')), 'secret');
  t.throws(() => parsePasswordMessage(Buffer.from('secret')), { name: 'PgError', sqlstate: '08P01' });
  t.throws(() => parsePasswordMessage(Buffer.from('a\0b\0')), { name: 'PgError', sqlstate: '08P01' });
  const len = Buffer.alloc(4);
  len.writeInt32BE(3, 0);
  t.same(parseSaslInitialResponse(Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), len, Buffer.from('abc')])), {
    mechanism: 'SCRAM-SHA-256',
    data: Buffer.from('abc'),
  });
  len.writeInt32BE(-1, 0);
  t.same(parseSaslInitialResponse(Buffer.concat([Buffer.from('X\0'), len])), { mechanism: 'X', data: null });
  len.writeInt32BE(9, 0);
  t.throws(() => parseSaslInitialResponse(Buffer.concat([Buffer.from('X\0'), len, Buffer.from('ab')])), {
    name: 'PgError',
    sqlstate: '08P01',
  });
});
