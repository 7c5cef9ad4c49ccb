/**
 * X.509 Names (RFC 5280 section 4.1.2.4) as PostgreSQL reads them for client certificates: the first
 * CN's raw bytes (X509_NAME_get_text_by_NID) and the RFC 2253 DN that X509_NAME_print_ex prints with
 * XN_FLAG_RFC2253 (OpenSSL's crypto/asn1/a_strex.c), byte for byte. peer-certificate.ts says why those.
 *
 * @see https://www.rfc-editor.org/rfc/rfc2253
 */

import { childrenOf, contentsOf, DerTag, type Element, encodingOf, readElement, readOid } from './der.ts';

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
export function firstCommonName(der: Buffer, subject: Element): Buffer | null {
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
