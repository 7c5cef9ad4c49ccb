/**
 * Just enough DER (ITU-T X.690) reading to find fields in a certificate: elements with single-byte tags
 * and definite lengths, their children, and object identifiers. Not a general ASN.1 decoder: it checks
 * that lengths stay inside the buffer, and nothing about what the elements mean.
 *
 * @see https://www.itu.int/rec/T-REC-X.690
 */

/** Universal tags the readers of certificates name. */
export const DerTag = {
  ObjectIdentifier: 0x06,
  UtcTime: 0x17,
  GeneralizedTime: 0x18,
  Sequence: 0x30,
  Set: 0x31,
} as const;

/** One DER element: its tag, where it begins (`offset`), and where its contents lie (`start`–`end`). */
export interface Element {
  tag: number;
  offset: number;
  start: number;
  end: number;
}

/** The element whose identifier octet is at `offset`; throws when its length runs past the buffer. */
export function readElement(der: Buffer, offset: number): Element {
  const tag = der[offset] ?? -1;
  let length = der[offset + 1] ?? 0;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[start + i] ?? 0);
    start += bytes;
  }
  if (start + length > der.length) throw new Error('truncated DER');
  return { tag, offset, start, end: start + length };
}

/** The children of a constructed element. */
export function childrenOf(der: Buffer, parent: Element): Element[] {
  const children: Element[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const child = readElement(der, offset);
    if (child.end > parent.end) throw new Error('DER element overruns its parent');
    children.push(child);
    offset = child.end;
  }
  return children;
}

/**
 * An OBJECT IDENTIFIER element in dotted form. Arcs of any size: OpenSSL prints big ones in full, and
 * a DN names unknown attribute types by their OID.
 */
export function readOid(der: Buffer, element: Element): string {
  if (element.tag !== DerTag.ObjectIdentifier) throw new Error('expected an OID');
  const subidentifiers: bigint[] = [];
  let value = 0n;
  for (let i = element.start; i < element.end; i++) {
    const byte = der[i] ?? 0;
    value = (value << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      subidentifiers.push(value);
      value = 0n;
    }
  }
  const [first, ...rest] = subidentifiers;
  if (first === undefined) throw new Error('empty OID');
  // The first subidentifier packs two arcs; a first arc of 2 takes every value from 80 up.
  const arcs = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...arcs, ...rest].join('.');
}

/** The contents of an element. */
export function contentsOf(der: Buffer, element: Element): Buffer {
  return der.subarray(element.start, element.end);
}

/** The whole encoding of an element: identifier, length and contents. */
export function encodingOf(der: Buffer, element: Element): Buffer {
  return der.subarray(element.offset, element.end);
}
