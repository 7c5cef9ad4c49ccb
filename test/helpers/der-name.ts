/**
 * Hand-written DER for certificate subjects (tag, length, contents), for names no library would
 * write: a CN with a NUL, BMPString and UniversalString values, several CNs.
 */

/** One DER element. */
export function tlv(tag: number, ...contents: (Buffer | string)[]): Buffer {
  const body = Buffer.concat(contents.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));
  const length = body.length < 0x80 ? [body.length] : [0x82, body.length >> 8, body.length & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
export function oid(dotted: string): Buffer {
  const [first = 0n, second = 0n, ...rest] = dotted.split('.').map((arc) => BigInt(arc));
  const bytes: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const group = [Number(arc & 0x7fn)];
    for (let value = arc >> 7n; value > 0n; value >>= 7n) group.unshift(0x80 | Number(value & 0x7fn));
    bytes.push(...group);
  }
  return tlv(0x06, Buffer.from(bytes));
}
/** A Name: each inner array one RDN of [type, value] attributes. */
export function name(...rdns: [string, Buffer][][]): Buffer {
  return tlv(
    0x30,
    ...rdns.map((rdn) => tlv(0x31, ...rdn.map(([type, value]) => tlv(0x30, oid(type), value)))),
  );
}
export const utf8 = (text: string) => tlv(0x0c, text);
export const bmp = (text: string) => tlv(0x1e, Buffer.from(text, 'utf16le').swap16());
export const universal = (text: string) => {
  const codePoints = [...text].map((c) => c.codePointAt(0) ?? 0);
  const bytes = Buffer.alloc(codePoints.length * 4);
  for (const [i, codePoint] of codePoints.entries()) bytes.writeUInt32BE(codePoint, i * 4);
  return tlv(0x1c, bytes);
};
export const CN = '2.5.4.3';
export const O = '2.5.4.10';
