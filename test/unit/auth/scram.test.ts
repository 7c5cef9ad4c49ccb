import { createHmac } from 'node:crypto';
import t from 'tap';
import { computeSaltedPassword, deriveScramKeys } from '../../../src/auth/scram/keys.ts';
import { saslprep } from '../../../src/auth/scram/saslprep.ts';
import {
  createScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  verifyPasswordAgainstScram,
} from '../../../src/auth/scram/verifier.ts';
import { ScramClient } from '../../../src/upstream/scram-client.ts';

/** RFC 5802 Hi(), written out from the RFC's definition: an independent reference for PBKDF2. */
function referenceHi(password: string, salt: Buffer, iterations: number): Buffer {
  let u = createHmac('sha256', password)
    .update(Buffer.concat([salt, Buffer.from([0, 0, 0, 1])]))
    .digest();
  const result = Buffer.from(u);
  for (let i = 1; i < iterations; i++) {
    u = createHmac('sha256', password).update(u).digest();
    for (let j = 0; j < result.length; j++) result[j] = (result[j] ?? 0) ^ (u[j] ?? 0);
  }
  return result;
}

// RFC 7677 section 3.
const VECTOR = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

t.test('the SCRAM client reproduces the RFC 7677 exchange', async (t) => {
  // RFC 7677 sends n=user; PostgreSQL clients send an empty name. The proof covers client-first-bare,
  // so the vector is replayed with the RFC's bare message.
  const client = new ScramClient(VECTOR.password, VECTOR.clientNonce);
  t.equal(client.firstMessage(), `n,,n=,r=${VECTOR.clientNonce}`);
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const salted = await computeSaltedPassword(VECTOR.password, salt, 4096);
  t.same(salted, referenceHi(VECTOR.password, salt, 4096), 'PBKDF2 agrees with Hi() written from the RFC');
  const keys = deriveScramKeys(salted);
  const authMessage = `n=user,r=${VECTOR.clientNonce},${VECTOR.serverFirst},${VECTOR.clientFinal.slice(0, VECTOR.clientFinal.indexOf(',p='))}`;
  const signature = createHmac('sha256', keys.storedKey).update(authMessage).digest();
  const proof = Buffer.from(keys.clientKey.map((b, i) => b ^ (signature[i] ?? 0)));
  t.equal(`p=${proof.toString('base64')}`, VECTOR.clientFinal.slice(VECTOR.clientFinal.indexOf(',p=') + 1));
  const serverSignature = createHmac('sha256', keys.serverKey).update(authMessage).digest();
  t.equal(`v=${serverSignature.toString('base64')}`, VECTOR.serverFinal);
});

t.test('the SCRAM client checks nonce and server signature', async (t) => {
  const client = new ScramClient('pencil', 'abc');
  await t.rejects(client.finalMessage('r=xyz,s=AAAA,i=4096'), /nonce/);
  await t.rejects(client.finalMessage('r=abc,s=AAAA,i=4096'), /nonce/, 'the server must add to the nonce');
  await t.rejects(new ScramClient('pencil', 'abc').finalMessage('r=abcd,s=,i=4096'), /malformed/);
  const ok = new ScramClient('pencil', 'abc');
  await ok.finalMessage('r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
  t.throws(() => ok.verifyServerFinal('v=AAAA'), /signature/);
});

t.test("verifiers round-trip through PostgreSQL's text format", async (t) => {
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const verifier = await createScramVerifier('pencil', 4096, salt);
  const text = formatScramVerifier(verifier);
  t.match(text, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  t.same(parseScramVerifier(text), verifier);
  t.ok(await verifyPasswordAgainstScram('pencil', verifier));
  t.notOk(await verifyPasswordAgainstScram('pencil2', verifier));
  for (const bad of ['md5abc', 'SCRAM-SHA-256$0:AAAA$AAAA:AAAA', 'SCRAM-SHA-256$4096:W22Z$short:short', '']) {
    t.equal(parseScramVerifier(bad), null, `"${bad}" is not a verifier`);
  }
});

t.test('SASLprep maps, normalizes and refuses as RFC 4013 says', async (t) => {
  t.equal(saslprep('I\u00ADX'), 'IX', 'soft hyphen mapped to nothing');
  t.equal(saslprep('user'), 'user');
  t.equal(saslprep('USER'), 'USER', 'case preserved');
  t.equal(saslprep('\u00AA'), 'a', 'NFKC');
  t.equal(saslprep('\u2168'), 'IX', 'NFKC');
  t.equal(saslprep('a\u00A0b'), 'a b', 'non-ASCII space becomes a space');
  t.equal(saslprep('\u0007'), null, 'control characters are prohibited');
  t.equal(saslprep('\u0627\u0031'), null, 'RandALCat must start and end the string');
  t.equal(saslprep('\u0627\u0031\u0628'), '\u0627\u0031\u0628');
});
