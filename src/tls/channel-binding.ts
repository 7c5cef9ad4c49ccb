/**
 * `tls-server-end-point` channel binding data (RFC 5929 section 4.1): the hash of the server's
 * certificate, with the hash function of the certificate's signature algorithm — SHA-256 when that is
 * MD5 or SHA-1 — and none at all for algorithms without one (Ed25519, Ed448), where SCRAM-SHA-256-PLUS
 * cannot be offered. Reads just enough DER to find the signature algorithm.
 *
 * @see https://www.rfc-editor.org/rfc/rfc5929#section-4.1
 */

import { createHash } from 'node:crypto';
import { childrenOf, type Element, readElement, readOid } from './der.ts';

/** Hash functions by signature algorithm OID; `null`: the algorithm names no hash. */
const SIGNATURE_HASHES: Readonly<Record<string, string | null>> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption: MD5 is replaced by SHA-256
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption: SHA-1 likewise
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
};

/** Digest OIDs, for RSASSA-PSS, whose hash is a parameter. */
const DIGESTS: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha256', // SHA-1: replaced by SHA-256
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};

const RSASSA_PSS = '1.2.840.113549.1.1.10';

/** The hash of an RSASSA-PSS signature: [0] hashAlgorithm of its parameters, SHA-1 when absent. */
function pssHash(der: Buffer, algorithm: Element[]): string | undefined {
  const params = algorithm[1];
  const hashField = params ? childrenOf(der, params).find((child) => child.tag === 0xa0) : undefined;
  const hashAlgorithm = hashField ? childrenOf(der, hashField)[0] : undefined;
  const digestOid = hashAlgorithm ? childrenOf(der, hashAlgorithm)[0] : undefined;
  return digestOid ? DIGESTS[readOid(der, digestOid)] : 'sha256';
}

/** The hash function tls-server-end-point uses for a certificate (DER), or null if there is none. */
export function channelBindingHash(certificate: Buffer): string | null {
  const top = readElement(certificate, 0);
  const [, signatureAlgorithm] = childrenOf(certificate, top);
  if (!signatureAlgorithm) throw new Error('not a certificate');
  const algorithm = childrenOf(certificate, signatureAlgorithm);
  const oidElement = algorithm[0];
  if (!oidElement) throw new Error('no signature algorithm');
  const oid = readOid(certificate, oidElement);
  const hash = oid === RSASSA_PSS ? pssHash(certificate, algorithm) : SIGNATURE_HASHES[oid];
  return hash ?? null;
}

/** The tls-server-end-point data for a server certificate (DER), or null when it has none. */
export function tlsServerEndPoint(certificate: Buffer): Buffer | null {
  try {
    const hash = channelBindingHash(certificate);
    return hash === null ? null : createHash(hash).update(certificate).digest();
  } catch {
    return null;
  }
}
