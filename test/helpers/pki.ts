/**
 * A throwaway PKI per test run: a root CA, intermediate CAs, the certificates they issue (server or
 * client, any subject, any validity window) and CRLs, PEM-encoded. Nothing here is ever written into the
 * repository.
 */

import 'reflect-metadata';
import { webcrypto } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A certificate with its key, PEM-encoded, and the objects to sign with. */
export interface Issued {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${der.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return `01${Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex')}`;
}

const CA_KEY_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

/** A self-signed CA. */
export async function createCa(name = 'pgward test CA'): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys), cert, keys };
}

/** A CA signed by `root` that may sign only end-entity certificates (pathLen 0). */
export async function createIntermediateCa(
  root: Issued,
  name = 'pgward test intermediate CA',
): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}`,
    issuer: root.cert.subjectName,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys), cert, keys };
}

/** What to put in an issued certificate. */
export interface IssueOptions {
  /** A DN string (`O=pgward, CN=alice`: encoding order), or a Name made from DER for any encoding. */
  subject: string | x509.Name;
  /** DNS names and IP addresses for a server certificate. */
  dns?: string[];
  ips?: string[];
  usage: 'server' | 'client';
  /** The validity window: by default from a day ago to 30 days on; in the past or future for tests. */
  notBefore?: Date;
  notAfter?: Date;
}

/** A certificate signed by `ca` (a root or an intermediate). */
export async function issueCertificate(ca: Issued, options: IssueOptions): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names = [
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: options.subject,
    issuer: ca.cert.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys), cert, keys };
}

/** When a CRL was issued and when the next is due. */
export interface CrlOptions {
  /** By default an hour ago. */
  thisUpdate?: Date;
  /** By default a day on. */
  nextUpdate?: Date;
}

/** A CRL (PEM) signed by `ca` that revokes `revoked`, certificates `ca` issued. */
export async function createCrl(ca: Issued, revoked: Issued[], options: CrlOptions = {}): Promise<string> {
  const thisUpdate = options.thisUpdate ?? new Date(Date.now() - DAY / 24);
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate,
    nextUpdate: options.nextUpdate ?? new Date(Date.now() + DAY),
    signingAlgorithm: ALG,
    signingKey: ca.keys.privateKey,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert)],
    entries: revoked.map((issued) => ({
      serialNumber: issued.cert.serialNumber,
      revocationDate: thisUpdate,
      reason: x509.X509CrlReason.keyCompromise,
    })),
  });
  // OpenSSL reads only the `X509 CRL` label; @peculiar/x509 writes `CRL` and no final newline.
  return `${crl.toString('pem').replaceAll('BEGIN CRL', 'BEGIN X509 CRL').replaceAll('END CRL', 'END X509 CRL').trimEnd()}\n`;
}

/** The certificates' PEM, concatenated in the order given (a leaf, then the CAs above it). */
export function chainPem(...issued: Issued[]): string {
  // @peculiar/x509's PEM has no final newline.
  return issued.map((certificate) => `${certificate.certPem.trimEnd()}\n`).join('');
}
