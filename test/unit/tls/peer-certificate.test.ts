/**
 * Client certificate facts. The DN is checked against `openssl x509 -noout -subject -nameopt RFC2253`,
 * which prints with X509_NAME_print_ex(…, XN_FLAG_RFC2253) — PostgreSQL's call for clientname=DN — for
 * certificates made per run: by `openssl req` (what real CAs produce) and from hand-written DER (string
 * types and values `openssl req` will not write). The verification classes come from a real node:tls
 * server asking for a certificate, as pgward's listener does.
 */

import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import t, { type Test } from 'tap';
import { childrenOf, encodingOf, readElement } from '../../../src/tls/der.ts';
import {
  classifyVerifyError,
  type PeerCertificate,
  peerCertificateOf,
} from '../../../src/tls/peer-certificate.ts';
import { distinguishedNameRfc2253 } from '../../../src/tls/x509-name.ts';
import { bmp, CN, name, O, oid, tlv, universal, utf8 } from '../../helpers/der-name.ts';
import {
  chainPem,
  createCa,
  createCrl,
  createIntermediateCa,
  type Issued,
  issueCertificate,
} from '../../helpers/pki.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgward-peer-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

// The PKI first: tap ends the file's test when no subtest is pending.
const DAY = 86_400_000;
const ca = await createCa('pgward test root');
const intermediate = await createIntermediateCa(ca, 'pgward test intermediate');
const stranger = await createCa('some other CA');
const serverCert = await issueCertificate(ca, {
  subject: 'CN=localhost',
  ips: ['127.0.0.1'],
  usage: 'server',
});
const client = (subject: string, options: { notBefore?: Date; notAfter?: Date } = {}, issuer = ca) =>
  issueCertificate(issuer, { subject, usage: 'client', ...options });
const valid = await client('O=pgward, CN=alice');
const revoked = await client('CN=mallory');
const viaIntermediate = await client('O=pgward, OU=ops, CN=bob', {}, intermediate);
const revokedViaIntermediate = await client('CN=eve', {}, intermediate);

/** Runs the openssl CLI; its stdout. */
function openssl(...args: string[]): Buffer {
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The subject of a certificate (PEM or DER) as openssl prints it with `-nameopt RFC2253`. */
function opensslSubject(certificate: string | Buffer): string {
  const file = path.join(dir, `cert-${files++}`);
  writeFileSync(file, certificate);
  const inform = typeof certificate === 'string' ? 'PEM' : 'DER';
  const out = openssl('x509', '-inform', inform, '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253');
  return out
    .toString('latin1')
    .replace(/^subject=/, '')
    .replace(/\n$/, '');
}

/** The subject Name's DER: tbsCertificate's sixth field, counting the optional [0] version. */
function subjectDer(certificate: Buffer): Buffer {
  const [tbs] = childrenOf(certificate, readElement(certificate, 0));
  if (!tbs) throw new Error('no tbsCertificate');
  const fields = childrenOf(certificate, tbs);
  const subject = (fields[0]?.tag === 0xa0 ? fields.slice(1) : fields)[4];
  if (!subject) throw new Error('no subject');
  return encodingOf(certificate, subject);
}

/** A self-signed certificate from `openssl req` with `args` (`-subj`, `-utf8`, …) and a config. */
function opensslCertificate(args: string[], config = ''): { der: Buffer; certPem: string; keyPem: string } {
  const file = (ext: string) => path.join(dir, `req-${files}.${ext}`);
  const [key, pem, cnf] = [file('key'), file('pem'), file('cnf')];
  files++;
  writeFileSync(cnf, `[req]\ndistinguished_name = dn\n${config}\n[dn]\n`);
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key);
  openssl('req', '-new', '-x509', '-config', cnf, '-key', key, '-days', '1', ...args, '-out', pem);
  const certPem = readFileSync(pem, 'latin1');
  return { der: Buffer.from(new X509Certificate(certPem).raw), certPem, keyPem: readFileSync(key, 'latin1') };
}

t.test('the DN of certificates from openssl req is what openssl prints', async (t) => {
  const cases: [string, string[], string?][] = [
    [
      'multi-valued RDNs and DC components',
      ['-multivalue-rdn', '-subj', '/DC=org/DC=example/O=Ex+OU=Eng/CN=al+UID=1'],
    ],
    ['RFC 2253 specials', ['-subj', '/CN=Smith\\, John \\+ "JJ" <j;s> back\\\\slash/O=a=b\\/c']],
    ['a leading #, a lone #', ['-subj', '/CN=#hash/O=#/OU=in#side']],
    ['leading and trailing spaces', ['-subj', '/CN= padded /O= /OU=  two/L=in side']],
    ['UTF-8, escaped byte by byte', ['-utf8', '-subj', '/CN=Zoë Ünïcødé 日本 😀/O=Société Générale']],
    ['emailAddress as IA5String', ['-subj', '/CN=alice/emailAddress=alice@example.org']],
    ['BMPString (string_mask pkix)', ['-utf8', '-subj', '/CN=Zoë 日本 😀/O=plain'], 'string_mask = pkix'],
    ['T61String (string_mask nombstr)', ['-utf8', '-subj', '/CN=Zoë Øre/O=plain'], 'string_mask = nombstr'],
  ];
  for (const [title, args, config] of cases) {
    const { der } = opensslCertificate(args, config);
    t.equal(distinguishedNameRfc2253(subjectDer(der)), opensslSubject(der), title);
  }
});

/** A certificate with this subject DER, issued by @peculiar/x509, which keeps valid DER as written. */
async function withSubject(subject: Buffer): Promise<Issued> {
  return issueCertificate(ca, { subject: new x509.Name(subject), usage: 'client' });
}

const selfSigning = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A self-signed certificate (DER) with this subject exactly: no library between the bytes and openssl. */
function selfSigned(subject: Buffer): Buffer {
  const ecdsaWithSha256 = tlv(0x30, oid('1.2.840.10045.4.3.2'));
  const time = (ms: number) => tlv(0x17, `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`);
  const tbs = tlv(
    0x30,
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, Buffer.from([1])),
    ecdsaWithSha256,
    subject,
    tlv(0x30, time(Date.now() - DAY), time(Date.now() + DAY)),
    subject,
    selfSigning.publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, selfSigning.privateKey);
  return tlv(0x30, tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), signature));
}

t.test('the DN of hand-written names is what openssl prints', async (t) => {
  const longOid = `1.3.6.1.4.1.${Array.from({ length: 20 }, (_, i) => 1000 + i).join('.')}`;
  const cases: [string, Buffer][] = [
    [
      'an unknown type: its OID, the value dumped as DER',
      name([['1.2.3.4.5', utf8('custom, value')]], [[CN, utf8('x')]]),
    ],
    ['an OID past 79 characters is cut where OBJ_obj2txt cuts it', name([[longOid, utf8('v')]])],
    ['a first arc of 2 takes any second arc', name([['2.999.3', utf8('v')]])],
    ['BMPString and UniversalString become UTF-8', name([[CN, bmp('Zoë 日本')]], [[O, universal('😀 x #')]])],
    ['T61String bytes are Latin-1', name([[CN, tlv(0x14, Buffer.from([0x23, 0x41, 0xe9, 0x20]))]])],
    ['control characters, DEL and NUL are hex', name([[CN, utf8('a\x01b\x7fc\x00d\n\x1f')]])],
    [
      'a lone #, a lone space, two spaces, a trailing #',
      name([[O, utf8('#')]], [[CN, utf8(' ')]], [['2.5.4.11', utf8('  ')]], [['2.5.4.7', utf8('x#')]]),
    ],
    ['an empty value', name([[CN, utf8('')]])],
    [
      'a multi-valued RDN as written, not sorted',
      name([
        [CN, utf8('b')],
        [O, utf8('a')],
        ['2.5.4.11', utf8('c')],
      ]),
    ],
    ['an empty subject', name()],
    [
      'other string types',
      name([
        ['2.5.4.5', tlv(0x12, '12 34')],
        ['2.5.4.20', tlv(0x16, 'ia5;')],
      ]),
    ],
    ['a BIT STRING value is dumped', name([[CN, tlv(0x03, Buffer.from([0, 0x41]))]])],
    ['a SEQUENCE value is dumped', name([[CN, tlv(0x30, utf8('in'), utf8('side'))]])],
  ];
  for (const [title, subject] of cases) {
    t.equal(distinguishedNameRfc2253(subject), opensslSubject(selfSigned(subject)), title);
  }
});

t.test('OpenSSL refuses certificates with malformed strings, so no DN is needed for them', async (t) => {
  const cases: [string, Buffer][] = [
    ['invalid UTF-8', tlv(0x0c, Buffer.from([0x41, 0xc3, 0xff]))],
    ['a BMPString of odd length', tlv(0x1e, Buffer.from([0, 0x41, 0]))],
    ['a lone surrogate in a BMPString', tlv(0x1e, Buffer.from([0xd8, 0, 0, 0x41]))],
    ['a UniversalString past U+10FFFF', tlv(0x1c, Buffer.from([0, 0x11, 0, 0]))],
    ['a VisibleString (not a type X.509 names may use)', tlv(0x1a, 'v')],
    ['an INTEGER', tlv(0x02, Buffer.from([5]))],
    ['a UTCTime', tlv(0x17, '250101000000Z')],
  ];
  for (const [title, value] of cases) {
    t.throws(() => opensslSubject(selfSigned(name([[CN, value]]))), title);
  }
});

t.test('every attribute type OpenSSL names is named the same, the others are OIDs', async (t) => {
  const types = [
    ...Array.from({ length: 111 }, (_, i) => `2.5.4.${i}`),
    ...Array.from({ length: 61 }, (_, i) => `0.9.2342.19200300.100.1.${i}`),
    ...Array.from({ length: 31 }, (_, i) => `1.2.840.113549.1.9.${i}`),
    ...[1, 2, 3, 4].map((i) => `1.3.6.1.4.1.311.60.2.1.${i}`),
    ...[1, 2, 3, 4, 5, 6].map((i) => `1.3.6.1.5.5.7.9.${i}`),
    ...['1.2.643.3.131.1.1', '1.2.643.100.1', '1.2.643.100.3', '1.2.643.100.5', '1.3.6.1.4.1.311.20.2.3'],
  ];
  const subject = name(...types.map((type): [string, Buffer][] => [[type, utf8('v')]]));
  const ours = distinguishedNameRfc2253(subject).split(',');
  const theirs = opensslSubject(selfSigned(subject)).split(',');
  t.equal(ours.length, types.length);
  t.same(ours, theirs);
});

t.test('OpenSSL verification codes fall into classes', async (t) => {
  const cases: [string, string][] = [
    ['CERT_HAS_EXPIRED', 'expired'],
    ['CERT_NOT_YET_VALID', 'not-yet-valid'],
    ['CERT_REVOKED', 'revoked'],
    ['UNABLE_TO_GET_ISSUER_CERT', 'untrusted'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'untrusted'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'untrusted'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'untrusted'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'untrusted'],
    ['CERT_UNTRUSTED', 'untrusted'],
    ['UNABLE_TO_GET_CRL', 'untrusted'],
    ['CRL_HAS_EXPIRED', 'invalid'],
    ['CERT_SIGNATURE_FAILURE', 'invalid'],
    ['INVALID_CA', 'invalid'],
    ['PATH_LENGTH_EXCEEDED', 'invalid'],
    ['SOMETHING_NEW', 'invalid'],
  ];
  for (const [code, problem] of cases) t.equal(classifyVerifyError(code), problem, code);
});

/**
 * Starts a real server trusting `ca` with these CRLs, asking for a certificate without requiring one as
 * pgward's listener does; returns a function that connects with a certificate (or none) and reports.
 */
async function startServer(t: Test, crl: string[]) {
  const server = tls.createServer({
    key: serverCert.keyPem,
    cert: serverCert.certPem,
    ca: ca.certPem,
    ...(crl.length > 0 ? { crl } : {}),
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  return async (presented?: { cert: string; key: string }): Promise<PeerCertificate | null> => {
    const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, ...presented });
    socket.on('error', () => {});
    const [serverSide] = await accepted;
    const facts = peerCertificateOf(serverSide);
    serverSide.destroy();
    socket.destroy();
    return facts;
  };
}
const as = (issued: Issued, cert = issued.certPem) => ({ cert, key: issued.keyPem });

/** A self-signed client certificate (not a CA), from openssl req. */
function selfSignedLeaf(): { cert: string; key: string } {
  const usage = [
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
    'basicConstraints=CA:FALSE',
  ];
  const { certPem, keyPem } = opensslCertificate([
    '-subj',
    '/CN=alice',
    ...usage.flatMap((u) => ['-addext', u]),
  ]);
  return { cert: certPem, key: keyPem };
}

t.test('a certificate that verifies: its facts, no problem', async (t) => {
  const connect = await startServer(t, [await createCrl(ca, [revoked]), await createCrl(intermediate, [])]);
  const facts = await connect(as(valid));
  const node = new X509Certificate(valid.certPem);
  t.same(facts, {
    commonName: 'alice',
    distinguishedName: 'CN=alice,O=pgward',
    fingerprint256: node.fingerprint256,
    serialNumber: node.serialNumber,
    validFrom: valid.cert.notBefore,
    validTo: valid.cert.notAfter,
    problem: null,
    problemCode: null,
  });
  t.equal(facts?.distinguishedName, opensslSubject(valid.certPem), 'the DN openssl prints');

  const chained = await connect(as(viaIntermediate, chainPem(viaIntermediate, intermediate)));
  t.match(chained, { commonName: 'bob', distinguishedName: 'CN=bob,OU=ops,O=pgward', problem: null });
});

t.test('each kind of problem, with OpenSSL code', async (t) => {
  const connect = await startServer(t, [
    await createCrl(ca, [revoked]),
    await createCrl(intermediate, [revokedViaIntermediate]),
  ]);
  const now = Date.now();
  const expired = await client('CN=old', {
    notBefore: new Date(now - 10 * DAY),
    notAfter: new Date(now - DAY),
  });
  const early = await client('CN=early', {
    notBefore: new Date(now + DAY),
    notAfter: new Date(now + 10 * DAY),
  });
  const foreign = await client('CN=alice', {}, stranger);
  const cases: [string, { cert: string; key: string }, string, string][] = [
    ['expired', as(expired), 'expired', 'CERT_HAS_EXPIRED'],
    ['not yet valid', as(early), 'not-yet-valid', 'CERT_NOT_YET_VALID'],
    ['signed by another CA', as(foreign), 'untrusted', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['self-signed, which fails the CRL check first', selfSignedLeaf(), 'untrusted', 'UNABLE_TO_GET_CRL'],
    ['revoked', as(revoked), 'revoked', 'CERT_REVOKED'],
    [
      'revoked by the intermediate',
      as(revokedViaIntermediate, chainPem(revokedViaIntermediate, intermediate)),
      'revoked',
      'CERT_REVOKED',
    ],
    [
      'via the intermediate, chain not sent',
      as(viaIntermediate),
      'untrusted',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    ],
  ];
  for (const [title, presented, problem, problemCode] of cases) {
    const facts = await connect(presented);
    t.match(facts, { problem, problemCode }, title);
    const leaf = presented.cert.split(/(?<=-----END CERTIFICATE-----)/)[0] ?? '';
    t.equal(facts?.distinguishedName, opensslSubject(leaf), `${title}: the DN is still read`);
  }
  t.match(await connect(as(expired)), { commonName: 'old', validTo: expired.cert.notAfter });
});

t.test('a CRL for the root but none for the intermediate: untrusted (UNABLE_TO_GET_CRL)', async (t) => {
  const connect = await startServer(t, [await createCrl(ca, [])]);
  t.match(await connect(as(viaIntermediate, chainPem(viaIntermediate, intermediate))), {
    problem: 'untrusted',
    problemCode: 'UNABLE_TO_GET_CRL',
  });
});

t.test('without CRLs: self-signed is untrusted, a CA certificate invalid, none at all null', async (t) => {
  const connect = await startServer(t, []);
  t.match(await connect(selfSignedLeaf()), {
    problem: 'untrusted',
    problemCode: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  });
  t.match(
    await connect(as(stranger)),
    { problem: 'invalid', problemCode: 'INVALID_PURPOSE' },
    'a CA certificate is no client certificate',
  );
  t.match(await connect(as(revoked)), { problem: null }, 'nothing revokes it');
  t.equal(await connect(), null);
});

t.test('the CN is the first in encoding order, as X509_NAME_get_text_by_NID takes it', async (t) => {
  const connect = await startServer(t, []);
  const twoCns = await client('O=pgward, CN=outer, CN=inner');
  t.match(await connect(as(twoCns)), {
    commonName: 'outer',
    distinguishedName: 'CN=inner,CN=outer,O=pgward',
  });
  const noCn = await client('O=pgward, OU=ops');
  t.match(await connect(as(noCn)), { commonName: null, distinguishedName: 'OU=ops,O=pgward', problem: null });
  const unicode = await withSubject(name([[CN, utf8('zoë')]]));
  t.match(await connect(as(unicode)), { commonName: 'zoë', distinguishedName: 'CN=zo\\C3\\AB' });
});

t.test('a CN with a NUL is no name, and the certificate is invalid, as PostgreSQL refuses it', async (t) => {
  const connect = await startServer(t, []);
  const nul = await withSubject(name([[O, utf8('pgward')]], [[CN, utf8('admin\x00.evil')]]));
  t.match(await connect(as(nul)), {
    commonName: null,
    distinguishedName: 'CN=admin\\00.evil,O=pgward',
    problem: 'invalid',
    problemCode: 'COMMON_NAME_CONTAINS_NULL',
  });
});
