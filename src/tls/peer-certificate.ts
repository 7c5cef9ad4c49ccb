/**
 * What pgward knows about a TLS client's certificate, for the `cert` method and the `clientcert` option:
 * its CN and its RFC 2253 DN exactly as PostgreSQL reads them, its validity window, and whether its chain
 * verified against the configured CA and CRL (and if not, which kind of problem OpenSSL found).
 *
 * PostgreSQL (src/backend/libpq/be-secure-openssl.c, be_tls_open_server) takes the CN with
 * `X509_NAME_get_text_by_NID(name, NID_commonName, …)`, which returns the raw bytes of the FIRST CN in
 * the certificate's encoding order, and refuses the connection when they contain a NUL. It takes the DN
 * with `X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253)`, and XN_FLAG_RFC2253 includes
 * ASN1_STRFLGS_ESC_MSB: every byte of a non-ASCII character is printed as `\XX` (`é` is `\C3\A9`), so the
 * DN is always ASCII. (Only the DN shown in pg_stat_ssl and the logs, X509_NAME_to_cstring, clears
 * ESC_MSB.) `distinguishedNameRfc2253` (x509-name.ts) reproduces X509_NAME_print_ex with those flags (OpenSSL's
 * crypto/asn1/a_strex.c) byte for byte; `openssl x509 -noout -subject -nameopt RFC2253` prints the same.
 *
 * Not here: building the TLS context (server-context.ts) and what a rule does with these facts
 * (src/auth/client-certificate.ts).
 *
 * @see https://www.postgresql.org/docs/current/auth-cert.html
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html (clientcert, clientname)
 * @see https://www.rfc-editor.org/rfc/rfc2253
 */

import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { childrenOf, contentsOf, DerTag, type Element, encodingOf, readElement } from './der.ts';
import { distinguishedNameRfc2253, firstCommonName } from './x509-name.ts';

/** Why a presented certificate is not valid. */
export type CertificateProblem = 'expired' | 'not-yet-valid' | 'untrusted' | 'revoked' | 'invalid';

/** A client's certificate as rules see it. */
export interface PeerCertificate {
  /**
   * The subject's first CN in encoding order — with several, the one the DN prints last — as PostgreSQL
   * takes it: the value's bytes, read as UTF-8. Null when the subject has no CN, or when the CN
   * contains a NUL (PostgreSQL refuses such connections; `problem` then says `invalid`).
   */
  commonName: string | null;
  /** The subject DN as PostgreSQL prints it for `clientname=DN`: RFC 2253, ASCII, non-ASCII as `\XX`. */
  distinguishedName: string;
  /** SHA-256 fingerprint, colon-separated upper-case hex pairs. */
  fingerprint256: string;
  /** The serial number in upper-case hex, as node:crypto gives it. */
  serialNumber: string;
  validFrom: Date;
  validTo: Date;
  /** Null when the chain verified against the configured CA (and CRL); else the class of problem. */
  problem: CertificateProblem | null;
  /**
   * OpenSSL's verification error for the log (`CERT_HAS_EXPIRED`, …), or one of pgward's own in the
   * same style: `COMMON_NAME_CONTAINS_NULL`, `UNREADABLE_CERTIFICATE`.
   */
  problemCode: string | null;
}

/**
 * OpenSSL verification errors by class; every other code is `invalid`. UNABLE_TO_GET_CRL means a CRL
 * is configured but none covers some certificate of the chain (OpenSSL checks the whole chain, as
 * PostgreSQL asks with X509_V_FLAG_CRL_CHECK_ALL): revocation cannot be ruled out, so the chain is not
 * trusted. An expired or not yet valid CRL (CRL_HAS_EXPIRED, CRL_NOT_YET_VALID) is `invalid`.
 */
const PROBLEM_BY_CODE: Readonly<Record<string, CertificateProblem>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_REVOKED: 'revoked',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted',
  CERT_UNTRUSTED: 'untrusted',
  UNABLE_TO_GET_CRL: 'untrusted',
};

/** The class of an OpenSSL certificate verification error code. */
export function classifyVerifyError(code: string): CertificateProblem {
  return PROBLEM_BY_CODE[code] ?? 'invalid';
}

/**
 * The client's certificate once its handshake is done, or `refused` for a CN with an embedded NUL:
 * such a connection ends without a word, whatever the rules, as in PostgreSQL (be_tls_open_server:
 * COMMERROR "SSL certificate's common name contains embedded null"), because such a name is built to
 * fool name checks. The refusal is logged here, for every listener alike.
 */
export function handshakeCertificate(socket: TLSSocket, log: Logger): PeerCertificate | null | 'refused' {
  const certificate = peerCertificateOf(socket);
  if (certificate?.problemCode !== 'COMMON_NAME_CONTAINS_NULL') return certificate;
  log.info(
    { subject: certificate.distinguishedName },
    "SSL certificate's common name contains embedded null",
  );
  return 'refused';
}

/** Facts about the certificate the client presented on `socket`; null when it presented none. */
export function peerCertificateOf(socket: TLSSocket): PeerCertificate | null {
  const x509 = socket.getPeerX509Certificate();
  if (!x509) return null;
  const verifyCode = socket.authorized ? null : verifyErrorCode(socket.authorizationError);
  const verified = {
    fingerprint256: x509.fingerprint256,
    serialNumber: x509.serialNumber,
    problem: socket.authorized ? null : verifyCode === null ? 'invalid' : classifyVerifyError(verifyCode),
    problemCode: verifyCode,
  } as const;
  try {
    const fields = readCertificate(Buffer.from(x509.raw));
    const commonName = firstCommonName(fields.der, fields.subject);
    const hasNul = commonName?.includes(0) ?? false;
    return {
      ...verified,
      commonName: commonName === null || hasNul ? null : commonName.toString('utf8'),
      distinguishedName: distinguishedNameRfc2253(encodingOf(fields.der, fields.subject)),
      validFrom: fields.validFrom,
      validTo: fields.validTo,
      ...(hasNul && verified.problem === null
        ? { problem: 'invalid', problemCode: 'COMMON_NAME_CONTAINS_NULL' }
        : {}),
    };
  } catch {
    // OpenSSL accepted it, so only an encoding this reader does not handle gets here.
    return {
      ...verified,
      commonName: null,
      distinguishedName: '',
      validFrom: new Date(x509.validFrom),
      validTo: new Date(x509.validTo),
      problem: verified.problem ?? 'invalid',
      problemCode: verified.problemCode ?? 'UNREADABLE_CERTIFICATE',
    };
  }
}

/** Node sets `authorizationError` to OpenSSL's code as a string, though its type says Error. */
function verifyErrorCode(error: unknown): string | null {
  if (typeof error === 'string') return error;
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return null;
}

/** The parts of a certificate (DER) read here. */
interface CertificateFields {
  der: Buffer;
  subject: Element;
  validFrom: Date;
  validTo: Date;
}

/** Certificate → tbsCertificate → [version], serialNumber, signature, issuer, validity, subject (RFC 5280). */
function readCertificate(der: Buffer): CertificateFields {
  const [tbs] = childrenOf(der, readElement(der, 0));
  if (!tbs) throw new Error('not a certificate');
  const fields = childrenOf(der, tbs);
  const rest = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const [, , , validity, subject] = rest;
  if (!validity || !subject || subject.tag !== DerTag.Sequence) throw new Error('not a certificate');
  const [notBefore, notAfter] = childrenOf(der, validity);
  if (!notBefore || !notAfter) throw new Error('no validity');
  return { der, subject, validFrom: readTime(der, notBefore), validTo: readTime(der, notAfter) };
}

/** A UTCTime (years 1950–2049) or GeneralizedTime in the forms RFC 5280 section 4.1.2.5 allows. */
function readTime(der: Buffer, element: Element): Date {
  const text = contentsOf(der, element).toString('latin1');
  const match =
    element.tag === DerTag.UtcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : element.tag === DerTag.GeneralizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (!match) throw new Error(`unreadable time ${JSON.stringify(text)}`);
  const [year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0] = match.slice(1).map(Number);
  const fullYear = element.tag === DerTag.UtcTime ? (year < 50 ? 2000 + year : 1900 + year) : year;
  const date = new Date(0);
  date.setUTCFullYear(fullYear, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date;
}

/**
 * Sets `authorized` and `authorizationError` on a server-side TLSSocket made by hand, as node's
 * tls.Server does for its own sockets (lib/_tls_wrap.js, onServerSocketSecure), from OpenSSL's
 * verification result. Fails closed: without that result, the certificate counts as unverified.
 */
export function recordVerification(secure: TLSSocket): void {
  const handle = (secure as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  const error =
    typeof handle?.verifyError === 'function' ? handle.verifyError() : new Error('VERIFY_UNAVAILABLE');
  secure.authorized = error === null;
  if (error) {
    const code = (error as NodeJS.ErrnoException).code ?? error.message;
    (secure as unknown as { authorizationError: string }).authorizationError = code;
  }
}
