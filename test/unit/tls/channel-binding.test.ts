/**
 * tls-server-end-point data against a reference: certificates with each kind of signature algorithm,
 * made by the openssl CLI per run, parsed by @peculiar/x509 (independent of pgward's DER walk).
 */

import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import t from 'tap';
import { channelBindingHash, tlsServerEndPoint } from '../../../src/tls/channel-binding.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgward-cb-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate (DER) for a key type and signing options. */
function certificate(name: string, keyArgs: string[], signArgs: string[]): Buffer {
  const key = path.join(dir, `${name}.key`);
  const pem = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key], { stdio: 'ignore' });
  execFileSync(
    'openssl',
    ['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '1', ...signArgs, '-out', pem],
    { stdio: 'ignore' },
  );
  return Buffer.from(new X509Certificate(readFileSync(pem)).raw);
}

/** RFC 5929 section 4.1, from @peculiar/x509's reading of the signature algorithm. */
function reference(der: Buffer): Buffer | null {
  const cert = new x509.X509Certificate(der);
  const algorithm = cert.signatureAlgorithm as { name: string; hash?: { name: string } };
  const hash = algorithm.hash?.name;
  if (!hash) return null;
  const node = { 'SHA-1': 'sha256', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' }[hash];
  if (!node) throw new Error(`unexpected hash ${hash}`);
  return createHash(node).update(der).digest();
}

const rsa = ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const cases: [string, string[], string[], string | null][] = [
  ['rsa-sha1', rsa, ['-sha1'], 'sha256'],
  ['rsa-sha256', rsa, ['-sha256'], 'sha256'],
  ['rsa-sha384', rsa, ['-sha384'], 'sha384'],
  ['rsa-sha512', rsa, ['-sha512'], 'sha512'],
  ['ecdsa-sha256', ec, ['-sha256'], 'sha256'],
  ['ecdsa-sha384', ec, ['-sha384'], 'sha384'],
  [
    'rsa-pss-sha384',
    rsa,
    ['-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32'],
    'sha384',
  ],
  ['ed25519', ['-algorithm', 'ED25519'], [], null],
];

for (const [name, keyArgs, signArgs, hash] of cases) {
  t.test(name, async (t) => {
    const der = certificate(name, keyArgs, signArgs);
    t.equal(channelBindingHash(der), hash, 'the hash RFC 5929 names');
    const expected = reference(der);
    t.same(tlsServerEndPoint(der), expected, 'the binding data equals the reference');
    if (hash !== null) t.equal(expected?.length, { sha256: 32, sha384: 48, sha512: 64 }[hash]);
  });
}

t.test('bytes that are not a certificate give no binding data', async (t) => {
  t.equal(tlsServerEndPoint(Buffer.from('not a certificate')), null);
  t.equal(tlsServerEndPoint(Buffer.alloc(0)), null);
});
