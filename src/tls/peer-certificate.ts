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
 * ESC_MSB.) `distinguishedNameRfc2253` reproduces X509_NAME_print_ex with those flags (OpenSSL's
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
import { childrenOf, contentsOf, DerTag, type Element, encodingOf, readElement, readOid } from './der.ts';

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

const COMMON_NAME = '2.5.4.3';

/** One attribute of a Name, with the index of the RDN it belongs to. */
interface NameAttribute {
  rdn: number;
  type: string;
  value: Element;
}

/** The attributes of a Name (a SEQUENCE OF RDN, each a SET OF AttributeTypeAndValue), in order. */
function attributesOf(der: Buffer, name: Element): NameAttribute[] {
  if (name.tag !== DerTag.Sequence) throw new Error('a Name is a SEQUENCE');
  return childrenOf(der, name).flatMap((rdn, index) => {
    if (rdn.tag !== DerTag.Set) throw new Error('an RDN is a SET');
    return childrenOf(der, rdn).map((attribute) => {
      const [type, value] = childrenOf(der, attribute);
      if (attribute.tag !== DerTag.Sequence || !type || !value) throw new Error('bad AttributeTypeAndValue');
      return { rdn: index, type: readOid(der, type), value };
    });
  });
}

/** The bytes of the first CN, as X509_NAME_get_text_by_NID copies them; null when there is none. */
function firstCommonName(der: Buffer, subject: Element): Buffer | null {
  const cn = attributesOf(der, subject).find((attribute) => attribute.type === COMMON_NAME);
  if (!cn) return null;
  // OpenSSL keeps a constructed value (a SEQUENCE, say) whole, a primitive one as its contents.
  return cn.value.tag & 0x20 ? encodingOf(der, cn.value) : contentsOf(der, cn.value);
}

/**
 * A DER Name as OpenSSL's `X509_NAME_print_ex(…, XN_FLAG_RFC2253)` prints it, which is what PostgreSQL
 * matches `clientname=DN` against: RDNs last to first, separated by `,`, the attributes of a
 * multi-valued RDN by `+` (also last to first), each `type=value` with OpenSSL's short name for the type.
 * A type OpenSSL does not name is printed as its OID with the value's whole encoding in hex
 * (`1.2.3.4=#0C0161`). Values: `,+"\<>;` get a backslash, as do a leading `#` or space and a trailing
 * space; control characters and every byte of a non-ASCII character are `\XX`; values that are not
 * character strings are dumped as `#` and hex.
 */
export function distinguishedNameRfc2253(subjectDer: Buffer): string {
  const attributes = attributesOf(subjectDer, readElement(subjectDer, 0)).reverse();
  return attributes
    .map((attribute, i) => {
      const separator = i === 0 ? '' : attributes[i - 1]?.rdn === attribute.rdn ? '+' : ',';
      const shortName = SHORT_NAMES.get(attribute.type);
      const value =
        shortName === undefined ? dump(subjectDer, attribute.value) : printValue(subjectDer, attribute.value);
      // OBJ_obj2txt writes the OID into an 80-byte buffer.
      return `${separator}${shortName ?? attribute.type.slice(0, 79)}=${value}`;
    })
    .join('');
}

/**
 * Bytes per character of the string types OpenSSL prints as text (a_strex.c's tag2nbyte), by tag;
 * 0 is UTF8String, printed byte by byte. Other types are dumped.
 */
const CHARACTER_WIDTHS: ReadonlyMap<number, 0 | 1 | 2 | 4> = new Map([
  [0x0c, 0], // UTF8String
  [0x12, 1], // NumericString
  [0x13, 1], // PrintableString
  [0x14, 1], // T61String, read as Latin-1
  [0x16, 1], // IA5String
  [0x17, 1], // UTCTime
  [0x18, 1], // GeneralizedTime
  [0x1a, 1], // VisibleString
  [0x1c, 4], // UniversalString
  [0x1e, 2], // BMPString
]);

/** `#` and the element's whole encoding in upper-case hex (RFC 2253 section 2.4). */
function dump(der: Buffer, value: Element): string {
  return `#${encodingOf(der, value).toString('hex').toUpperCase()}`;
}

/** A value's text with RFC 2253 escaping, as do_buf and do_esc_char produce it. */
function printValue(der: Buffer, value: Element): string {
  const width = CHARACTER_WIDTHS.get(value.tag);
  if (width === undefined) return dump(der, value);
  const bytes = contentsOf(der, value);
  // Each character as the bytes that get escaped one at a time: UTF-8 as it is, the rest converted.
  const characters: number[][] = [];
  if (width === 0) {
    for (const byte of bytes) characters.push([byte]);
  } else {
    if (bytes.length % width !== 0) throw new Error('string length is not a multiple of its width');
    for (let i = 0; i < bytes.length; i += width) characters.push(utf8Bytes(bytes.readUIntBE(i, width)));
  }
  return characters
    .map((character, i) => {
      // The last character's flag replaces the first's, so a lone `#` is not escaped, a lone space is.
      const position = i === characters.length - 1 ? 'last' : i === 0 ? 'first' : 'middle';
      return character.map((byte) => escapeByte(byte, position)).join('');
    })
    .join('');
}

/** UTF8_putc: a code point's UTF-8 bytes; none for a surrogate or past U+10FFFF, which OpenSSL drops. */
function utf8Bytes(codePoint: number): number[] {
  if (codePoint < 0x80) return [codePoint];
  if (codePoint < 0x800) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f)];
  if (codePoint < 0x10000) {
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) return [];
    return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
  }
  if (codePoint < 0x110000) {
    return [
      0xf0 | (codePoint >> 18),
      0x80 | ((codePoint >> 12) & 0x3f),
      0x80 | ((codePoint >> 6) & 0x3f),
      0x80 | (codePoint & 0x3f),
    ];
  }
  return [];
}

/** Characters RFC 2253 section 2.4 escapes with a backslash wherever they are. */
const SPECIALS = new Set([...',+"\\<>;'].map((c) => c.charCodeAt(0)));
const SPACE = 0x20;
const HASH = 0x23;

/** One byte of a value, escaped under ASN1_STRFLGS_ESC_2253 | ESC_CTRL | ESC_MSB. */
function escapeByte(byte: number, position: 'first' | 'middle' | 'last'): string {
  if (byte > 0x7f || byte < 0x20 || byte === 0x7f)
    return `\\${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  const character = String.fromCharCode(byte);
  if (SPECIALS.has(byte)) return `\\${character}`;
  if (byte === HASH && position === 'first') return `\\${character}`;
  if (byte === SPACE && position !== 'middle') return `\\${character}`;
  return character;
}

/** Consecutive OIDs under one arc, from `first`, named by a space-separated list. */
function arc(prefix: string, first: number, names: string): [string, string][] {
  return names.split(' ').map((name, i) => [`${prefix}.${first + i}`, name]);
}

/**
 * OpenSSL's short names (OBJ_nid2sn) for the attribute types a Name uses, checked against
 * `openssl x509 -nameopt RFC2253` by the tests. OpenSSL names many other OIDs (algorithms, extensions);
 * as attribute types they are printed here by OID.
 */
const SHORT_NAMES: ReadonlyMap<string, string> = new Map([
  ...arc('2.5.4', 3, 'CN SN serialNumber C L ST street O OU title description searchGuide businessCategory'),
  ...arc('2.5.4', 16, 'postalAddress postalCode postOfficeBox physicalDeliveryOfficeName telephoneNumber'),
  ...arc('2.5.4', 21, 'telexNumber teletexTerminalIdentifier facsimileTelephoneNumber x121Address'),
  ...arc(
    '2.5.4',
    25,
    'internationaliSDNNumber registeredAddress destinationIndicator preferredDeliveryMethod',
  ),
  ...arc('2.5.4', 29, 'presentationAddress supportedApplicationContext member owner roleOccupant seeAlso'),
  ...arc('2.5.4', 35, 'userPassword userCertificate cACertificate authorityRevocationList'),
  ...arc('2.5.4', 39, 'certificateRevocationList crossCertificatePair name GN initials generationQualifier'),
  ...arc('2.5.4', 45, 'x500UniqueIdentifier dnQualifier enhancedSearchGuide protocolInformation'),
  ...arc(
    '2.5.4',
    49,
    'distinguishedName uniqueMember houseIdentifier supportedAlgorithms deltaRevocationList',
  ),
  ...arc('2.5.4', 54, 'dmdName'),
  ...arc('2.5.4', 65, 'pseudonym'),
  ...arc('2.5.4', 72, 'role'),
  ...arc('2.5.4', 97, 'organizationIdentifier c3 n3 dnsName'),
  ...arc('0.9.2342.19200300.100.1', 1, 'UID textEncodedORAddress mail info favouriteDrink roomNumber photo'),
  ...arc('0.9.2342.19200300.100.1', 8, 'userClass host manager documentIdentifier documentTitle'),
  ...arc('0.9.2342.19200300.100.1', 13, 'documentVersion documentAuthor documentLocation'),
  ...arc('0.9.2342.19200300.100.1', 20, 'homeTelephoneNumber secretary otherMailbox lastModifiedTime'),
  ...arc('0.9.2342.19200300.100.1', 24, 'lastModifiedBy DC aRecord pilotAttributeType27 mXRecord nSRecord'),
  ...arc('0.9.2342.19200300.100.1', 30, 'sOARecord cNAMERecord'),
  ...arc('0.9.2342.19200300.100.1', 37, 'associatedDomain associatedName homePostalAddress personalTitle'),
  ...arc('0.9.2342.19200300.100.1', 41, 'mobileTelephoneNumber pagerTelephoneNumber friendlyCountryName uid'),
  ...arc(
    '0.9.2342.19200300.100.1',
    45,
    'organizationalStatus janetMailbox mailPreferenceOption buildingName',
  ),
  ...arc('0.9.2342.19200300.100.1', 49, 'dSAQuality singleLevelQuality subtreeMinimumQuality'),
  ...arc('0.9.2342.19200300.100.1', 52, 'subtreeMaximumQuality personalSignature dITRedirect audio'),
  ...arc('0.9.2342.19200300.100.1', 56, 'documentPublisher'),
  ...arc('1.2.840.113549.1.9', 1, 'emailAddress unstructuredName contentType messageDigest signingTime'),
  ...arc('1.2.840.113549.1.9', 6, 'countersignature challengePassword unstructuredAddress'),
  ...arc('1.2.840.113549.1.9', 9, 'extendedCertificateAttributes'),
  ...arc('1.2.840.113549.1.9', 14, 'extReq SMIME-CAPS SMIME'),
  ...arc('1.2.840.113549.1.9', 20, 'friendlyName localKeyID'),
  ...arc('1.3.6.1.4.1.311.60.2.1', 1, 'jurisdictionL jurisdictionST jurisdictionC'),
  ...arc('1.3.6.1.5.5.7.9', 1, 'id-pda-dateOfBirth id-pda-placeOfBirth id-pda-gender'),
  ...arc('1.3.6.1.5.5.7.9', 4, 'id-pda-countryOfCitizenship id-pda-countryOfResidence'),
  ['1.2.643.3.131.1.1', 'INN'],
  ['1.2.643.100.1', 'OGRN'],
  ['1.2.643.100.3', 'SNILS'],
  ['1.2.643.100.5', 'OGRNIP'],
  ['1.3.6.1.4.1.311.20.2.3', 'msUPN'],
]);
