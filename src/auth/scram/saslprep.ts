/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords: map, NFKC-normalize, then refuse
 * prohibited characters. PostgreSQL falls back to the raw bytes when a password is not valid
 * SASLprep input, so `saslprep` returns null and callers use the original.
 *
 * Unassigned code points come from today's Unicode tables, not Unicode 3.2's; bidi classes are
 * approximated by the right-to-left script blocks. Both only matter for non-ASCII passwords.
 *
 * @see https://www.rfc-editor.org/rfc/rfc4013
 */

type Range = readonly [number, number];

/** RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020. */
const NON_ASCII_SPACE: readonly Range[] = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** RFC 3454 B.1: characters commonly mapped to nothing. */
const MAPPED_TO_NOTHING: readonly Range[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/** RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.6, C.7, C.8 and C.9. */
const PROHIBITED: readonly Range[] = [
  ...NON_ASCII_SPACE,
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0xd800, 0xdfff],
  [0xe000, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0x10ffff],
];

/** Approximation of bidi classes R and AL (RFC 3454 D.1): Hebrew, Arabic, Syriac, Thaana, NKo… */
const RAND_AL: readonly Range[] = [
  [0x05be, 0x05be],
  [0x05c0, 0x05c0],
  [0x05c3, 0x05c3],
  [0x05d0, 0x05f4],
  [0x0600, 0x07ff],
  [0xfb1d, 0xfdff],
  [0xfe70, 0xfefc],
];

const UNASSIGNED = /\p{Cn}/u;
const LETTER = /\p{L}/u;

function inRanges(codePoint: number, ranges: readonly Range[]): boolean {
  return ranges.some(([low, high]) => codePoint >= low && codePoint <= high);
}

function isNonCharacter(codePoint: number): boolean {
  return (codePoint & 0xfffe) === 0xfffe;
}

/** Applies SASLprep; returns null when the input is not valid SASLprep input. */
export function saslprep(input: string): string | null {
  let mapped = '';
  for (const char of input) {
    const codePoint = char.codePointAt(0) ?? 0;
    if (inRanges(codePoint, MAPPED_TO_NOTHING)) continue;
    mapped += inRanges(codePoint, NON_ASCII_SPACE) ? ' ' : char;
  }
  const normalized = mapped.normalize('NFKC');
  const chars = [...normalized];
  for (const char of chars) {
    const codePoint = char.codePointAt(0) ?? 0;
    if (inRanges(codePoint, PROHIBITED) || isNonCharacter(codePoint) || UNASSIGNED.test(char)) return null;
  }
  const isRandAl = (char: string | undefined) =>
    char !== undefined && inRanges(char.codePointAt(0) ?? 0, RAND_AL);
  if (chars.some(isRandAl)) {
    if (chars.some((char) => LETTER.test(char) && !isRandAl(char))) return null;
    if (!isRandAl(chars[0]) || !isRandAl(chars[chars.length - 1])) return null;
  }
  return normalized;
}

/** The bytes a SCRAM password is hashed from: SASLprep'd when possible, the raw UTF-8 otherwise. */
export function normalizeScramPassword(password: string): Buffer {
  return Buffer.from(saslprep(password) ?? password, 'utf8');
}
