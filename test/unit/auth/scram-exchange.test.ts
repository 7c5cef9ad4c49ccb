import { createHash, createHmac } from 'node:crypto';
import t from 'tap';
import {
  decodeScramMessage,
  mockScramVerifier,
  SCRAM_SHA_256,
  SCRAM_SHA_256_PLUS,
  ScramServerExchange,
} from '../../../src/auth/scram/exchange.ts';
import { createScramVerifier, type ScramVerifier } from '../../../src/auth/scram/verifier.ts';
import { PgError } from '../../../src/errors/pg-error.ts';
import { ScramClient } from '../../../src/upstream/scram-client.ts';

// RFC 7677 section 3, with the client-first-message-bare as the RFC has it (n=user).
const VECTOR = {
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const pencil = createScramVerifier('pencil', 4096, VECTOR.salt);

async function exchange(
  options: { binding?: Buffer | null; tls?: boolean; verifier?: ScramVerifier; doomed?: boolean } = {},
) {
  return new ScramServerExchange({
    verifier: options.verifier ?? (await pencil),
    doomed: options.doomed ?? false,
    tls: options.tls ?? false,
    channelBinding: options.binding ?? null,
    serverNonce: VECTOR.serverNonce,
  });
}

/** A pattern for t.throws: a PgError with this SQLSTATE, message and (when given) detail. */
function pgError(sqlstate: string, message: string | RegExp, detail?: string | RegExp) {
  const exact = (text: string | RegExp) =>
    typeof text === 'string' ? new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : text;
  return {
    constructor: PgError,
    sqlstate,
    message: exact(message),
    ...(detail === undefined ? {} : { detail: exact(detail) }),
  };
}

t.test('the server reproduces the RFC 7677 exchange byte for byte', async (t) => {
  const server = await exchange();
  t.same(server.mechanisms, [SCRAM_SHA_256]);
  server.selectMechanism(SCRAM_SHA_256);
  t.equal(server.clientFirst(VECTOR.clientFirst), VECTOR.serverFirst);
  const outcome = server.clientFinal(VECTOR.clientFinal);
  t.ok(outcome.ok);
  if (outcome.ok) {
    t.equal(outcome.serverFinal, VECTOR.serverFinal);
    t.equal(
      createHash('sha256')
        .update(outcome.clientKey)
        .digest()
        .equals((await pencil).storedKey),
      true,
    );
  }
});

t.test('a wrong proof is an outcome, not an error', async (t) => {
  const server = await exchange({ verifier: await createScramVerifier('other', 4096, VECTOR.salt) });
  server.selectMechanism(SCRAM_SHA_256);
  server.clientFirst(VECTOR.clientFirst);
  t.same(server.clientFinal(VECTOR.clientFinal), { ok: false, reason: 'SCRAM proof does not match' });
});

t.test('a doomed (mock) exchange fails even with a proof that would match', async (t) => {
  const server = await exchange({ doomed: true });
  server.selectMechanism(SCRAM_SHA_256);
  server.clientFirst(VECTOR.clientFirst);
  const outcome = server.clientFinal(VECTOR.clientFinal);
  t.equal(outcome.ok, false);
});

t.test(
  'mock verifiers: salt is SHA-256(user ‖ secret) cut to 16 bytes, 4096 iterations, stable',
  async (t) => {
    const secret = Buffer.from('server secret');
    const mock = mockScramVerifier('nobody', secret);
    const expected = createHash('sha256').update('nobody').update(secret).digest().subarray(0, 16);
    t.same(mock.salt, expected);
    t.equal(mock.iterations, 4096);
    t.same(mockScramVerifier('nobody', secret), mock, 'the same user gets the same salt every time');
    t.not(mockScramVerifier('somebody', secret).salt.toString('hex'), mock.salt.toString('hex'));
    t.not(mockScramVerifier('nobody', Buffer.from('x')).salt.toString('hex'), mock.salt.toString('hex'));
  },
);

t.test('mechanism choice', async (t) => {
  const binding = Buffer.alloc(32, 7);
  const plus = await exchange({ binding, tls: true });
  t.same(plus.mechanisms, [SCRAM_SHA_256_PLUS, SCRAM_SHA_256], '-PLUS first, as PostgreSQL orders them');
  const plain = await exchange();
  t.throws(
    () => plain.selectMechanism(SCRAM_SHA_256_PLUS),
    pgError('08P01', 'client selected an invalid SASL authentication mechanism'),
    '-PLUS is refused where it was not offered',
  );
  t.throws(
    () => plain.selectMechanism('OAUTHBEARER'),
    pgError('08P01', 'client selected an invalid SASL authentication mechanism'),
  );
});

t.test('client-first-message errors carry PostgreSQL wording', async (t) => {
  const cases: [string, string, string | RegExp, (string | RegExp)?][] = [
    ['x,,n=,r=abc', '08P01', 'malformed SCRAM message', 'Unexpected channel-binding flag "x".'],
    ['n;,n=,r=abc', '08P01', 'malformed SCRAM message', 'Comma expected, but found character ";".'],
    ['n,a=bob,n=,r=abc', '0A000', 'client uses authorization identity, but it is not supported'],
    ['n,x,n=,r=abc', '08P01', 'malformed SCRAM message', /Unexpected attribute "x"/],
    ['n,,m=ext,n=,r=abc', '0A000', 'client requires an unsupported SCRAM extension'],
    ['n,,r=abc', '08P01', 'malformed SCRAM message', 'Expected attribute "n" but found "r".'],
    ['n,,n=,q=abc', '08P01', 'malformed SCRAM message', 'Expected attribute "r" but found "q".'],
    ['n,,n=,r=ab\x7fc', '08P01', 'non-printable characters in SCRAM nonce'],
    ['n,,n=,r=', '08P01', 'non-printable characters in SCRAM nonce'],
    ['n,,n=,r=abc,1=x', '08P01', 'malformed SCRAM message', /Attribute expected/],
    [
      'p=tls-server-end-point,,n=,r=abc',
      '08P01',
      'malformed SCRAM message',
      /selected SCRAM-SHA-256 without channel binding/,
    ],
  ];
  for (const [message, sqlstate, text, detail] of cases) {
    const server = await exchange();
    server.selectMechanism(SCRAM_SHA_256);
    t.throws(() => server.clientFirst(message), pgError(sqlstate, text, detail), message);
  }
  const extensions = await exchange();
  extensions.selectMechanism(SCRAM_SHA_256);
  t.match(extensions.clientFirst('n,,n=,r=abc,x=ignored'), /^r=abc/, 'optional extensions are ignored');
});

t.test('channel binding negotiation', async (t) => {
  const binding = Buffer.alloc(32, 7);
  const downgrade = await exchange({ binding, tls: true });
  downgrade.selectMechanism(SCRAM_SHA_256);
  t.throws(
    () => downgrade.clientFirst('y,,n=,r=abc'),
    pgError('08P01', 'SCRAM channel binding negotiation error', /thinks the server does not/),
    "'y' when -PLUS was offered is a downgrade",
  );
  // Over TLS with a certificate that has no usable hash, -PLUS is not offered and 'y' is honest.
  const noBinding = await exchange({ binding: null, tls: true });
  noBinding.selectMechanism(SCRAM_SHA_256);
  noBinding.clientFirst(`y,,n=user,r=rOprNGfwEbeRWgbNEkqO`);
  t.throws(
    () => noBinding.clientFinal(VECTOR.clientFinal),
    pgError('08P01', 'unexpected SCRAM channel-binding attribute in client-final-message'),
    'c= must repeat the y flag',
  );

  const plusWithoutData = await exchange({ binding, tls: true });
  plusWithoutData.selectMechanism(SCRAM_SHA_256_PLUS);
  t.throws(
    () => plusWithoutData.clientFirst('n,,n=,r=abc'),
    pgError('08P01', 'malformed SCRAM message', /SCRAM-SHA-256-PLUS/),
  );
  const unknownType = await exchange({ binding, tls: true });
  unknownType.selectMechanism(SCRAM_SHA_256_PLUS);
  t.throws(
    () => unknownType.clientFirst('p=tls-unique,,n=,r=abc'),
    pgError('08P01', 'unsupported SCRAM channel-binding type "tls-unique"'),
  );
});

t.test('SCRAM-SHA-256-PLUS: c= carries the GS2 header and the certificate hash', async (t) => {
  const binding = createHash('sha256').update('a certificate').digest();
  const verifier = await pencil;
  const clientFirstBare = 'n=,r=clientnonce';
  const run = async (c: string) => {
    const server = await exchange({ binding, tls: true });
    server.selectMechanism(SCRAM_SHA_256_PLUS);
    const serverFirst = server.clientFirst(`p=tls-server-end-point,,${clientFirstBare}`);
    const nonce = /r=([^,]+)/.exec(serverFirst)?.[1] ?? '';
    const withoutProof = `c=${c},r=${nonce}`;
    // The proof, computed here from RFC 5802's formulas.
    const salted = (await import('../../../src/auth/scram/keys.ts')).computeSaltedPassword;
    const saltedPassword = await salted('pencil', verifier.salt, verifier.iterations);
    const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] ?? 0)));
    return server.clientFinal(`${withoutProof},p=${proof.toString('base64')}`);
  };
  const good = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), binding]).toString('base64');
  t.equal((await run(good)).ok, true, 'the right certificate hash passes');
  const other = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), Buffer.alloc(32)]).toString('base64');
  await t.rejects(run(other), pgError('28000', 'SCRAM channel binding check failed'));
  await t.rejects(run('biws'), pgError('28000', 'SCRAM channel binding check failed'));
});

t.test('client-final-message errors', async (t) => {
  const nonce = `rOprNGfwEbeRWgbNEkqO${VECTOR.serverNonce}`;
  const proof = 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
  const cases: [string, string, string | RegExp, (string | RegExp)?][] = [
    [
      `c=eSws,r=${nonce},p=${proof}`,
      '08P01',
      'unexpected SCRAM channel-binding attribute in client-final-message',
    ],
    [`c=biws,r=${nonce}x,p=${proof}`, '08P01', 'invalid SCRAM response', 'Nonce does not match.'],
    [
      `c=biws,r=${nonce},p=AAAA`,
      '08P01',
      'malformed SCRAM message',
      'Malformed proof in client-final-message.',
    ],
    [`c=biws,r=${nonce}`, '08P01', 'malformed SCRAM message', /Could not find proof/],
    [`c=biws,r=${nonce},p=${proof},x=1`, '08P01', 'malformed SCRAM message', /Garbage found/],
    [`r=${nonce},p=${proof}`, '08P01', 'malformed SCRAM message', 'Expected attribute "c" but found "r".'],
  ];
  for (const [message, sqlstate, text, detail] of cases) {
    const server = await exchange();
    server.selectMechanism(SCRAM_SHA_256);
    server.clientFirst(VECTOR.clientFirst);
    t.throws(() => server.clientFinal(message), pgError(sqlstate, text, detail), message);
  }
  const withExtension = await exchange();
  withExtension.selectMechanism(SCRAM_SHA_256);
  withExtension.clientFirst(VECTOR.clientFirst);
  const outcome = withExtension.clientFinal(`c=biws,r=${nonce},x=ext,p=${proof}`);
  t.equal(outcome.ok, false, 'an extension before the proof is read (and covered by the proof)');
});

t.test('SASL message text: empty, NUL inside, longer than 1024 bytes', async (t) => {
  t.throws(
    () => decodeScramMessage(Buffer.alloc(0)),
    pgError('08P01', 'malformed SCRAM message', 'The message is empty.'),
  );
  t.throws(
    () => decodeScramMessage(Buffer.from('n,,n=\0,r=a')),
    pgError('08P01', 'malformed SCRAM message', 'Message length does not match input length.'),
  );
  t.throws(
    () => decodeScramMessage(Buffer.alloc(1025, 0x61)),
    pgError('08P01', 'malformed SCRAM message', 'The message is too long.'),
  );
  t.equal(decodeScramMessage(Buffer.alloc(1024, 0x61)).length, 1024);
});

t.test('the upstream SCRAM client logs in with recovered keys (scram-passthrough)', async (t) => {
  const verifier = await createScramVerifier('secret pw');
  const first = new ScramServerExchange({ verifier, doomed: false, tls: false, channelBinding: null });
  first.selectMechanism(SCRAM_SHA_256);
  const client = new ScramClient('secret pw');
  const outcome = first.clientFinal(await client.finalMessage(first.clientFirst(client.firstMessage())));
  t.equal(outcome.ok, true, 'the client proves the password');
  if (!outcome.ok) return;
  client.verifyServerFinal(outcome.serverFinal);
  const keys = {
    clientKey: outcome.clientKey,
    serverKey: verifier.serverKey,
    salt: verifier.salt,
    iterations: verifier.iterations,
  };
  // A second server holding the same verifier, as the upstream does.
  const upstream = new ScramServerExchange({ verifier, doomed: false, tls: false, channelBinding: null });
  upstream.selectMechanism(SCRAM_SHA_256);
  const passthrough = new ScramClient(keys);
  const result = upstream.clientFinal(
    await passthrough.finalMessage(upstream.clientFirst(passthrough.firstMessage())),
  );
  t.equal(result.ok, true, 'the recovered ClientKey proves the same user to the upstream');
  if (result.ok) t.doesNotThrow(() => passthrough.verifyServerFinal(result.serverFinal));

  const otherSalt = await createScramVerifier('secret pw');
  const mismatch = new ScramServerExchange({
    verifier: otherSalt,
    doomed: false,
    tls: false,
    channelBinding: null,
  });
  mismatch.selectMechanism(SCRAM_SHA_256);
  const stale = new ScramClient(keys);
  await t.rejects(
    stale.finalMessage(mismatch.clientFirst(stale.firstMessage())),
    /different verifier/,
    'an upstream verifier with another salt cannot be answered with these keys',
  );
});
