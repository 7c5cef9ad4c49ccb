/**
 * Reads pg_hba.conf text into records the way PostgreSQL's tokenizer does (`tokenize_auth_file` and
 * `next_token`): backslash continuations, `#` comments, double quotes (`""` for a quote inside them),
 * comma lists, and the comment block directly above a record attached to it. Owns only the text's
 * shape: it does not decide what a field means (keywords, addresses, methods, options) or whether
 * pgward can express a record; pg-hba-import.ts does that. Pure: text in, records out.
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */

/** One word of a field; `quoted` when it began with a double quote (keywords lose their meaning). */
export interface Token {
  /** The word without its quotes, `""` inside quotes read as one `"`. */
  text: string;
  quoted: boolean;
}

/** A field: one token, or several separated by commas. */
export type Field = readonly Token[];

/** One record of pg_hba.conf: its fields and the comment lines that belong to it. */
export interface PgHbaRecord {
  /** 1-based line the record starts on (the first line of a record continued with `\`). */
  line: number;
  /** Never empty: lines without fields are not records. */
  fields: readonly Field[];
  /** The comment block right above the record, then its trailing comment; undefined if neither. */
  comment: string | undefined;
}

/** A logical line: physical lines joined where one ends with a backslash. */
interface LogicalLine {
  line: number;
  text: string;
}

function joinContinuations(text: string): LogicalLine[] {
  const physical = text.split(/\r?\n/);
  const lines: LogicalLine[] = [];
  let next = 0;
  while (next < physical.length) {
    const line = next + 1;
    let joined = '';
    // As PostgreSQL does: only a backslash added by the latest physical line continues the record.
    let joinedBefore = 0;
    while (next < physical.length) {
      joined += physical[next] ?? '';
      next += 1;
      if (joined.length <= joinedBefore || !joined.endsWith('\\')) break;
      joined = joined.slice(0, -1);
      joinedBefore = joined.length;
    }
    lines.push({ line, text: joined });
  }
  return lines;
}

/** Where the tokenizer is in a line, and the comment it ran into. */
interface Cursor {
  text: string;
  pos: number;
  comment: string | undefined;
}

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r';

function skipSeparators(cursor: Cursor): void {
  while (isBlank(cursor.text[cursor.pos]) || cursor.text[cursor.pos] === ',') cursor.pos += 1;
}

/** Reads one token; `comma` says a comma ends it, so the next token belongs to the same field. */
function readToken(cursor: Cursor): { token: Token; comma: boolean } | undefined {
  skipSeparators(cursor);
  let text = '';
  let inQuote = false;
  let wasQuote = false;
  let sawQuote = false;
  let quoted = false;
  let comma = false;
  for (; cursor.pos < cursor.text.length; cursor.pos += 1) {
    const c = cursor.text[cursor.pos] ?? '';
    if (!inQuote && isBlank(c)) break;
    if (!inQuote && c === '#') {
      cursor.comment = cursor.text.slice(cursor.pos + 1);
      cursor.pos = cursor.text.length;
      break;
    }
    if (!inQuote && c === ',') {
      comma = true;
      break;
    }
    // Inside quotes, "" stands for one double quote.
    if (c !== '"' || wasQuote) text += c;
    wasQuote = inQuote && c === '"' ? !wasQuote : false;
    if (c === '"') {
      inQuote = !inQuote;
      sawQuote = true;
      if (text === '') quoted = true;
    }
  }
  return sawQuote || text !== '' ? { token: { text, quoted }, comma } : undefined;
}

function readField(cursor: Cursor): Token[] {
  const tokens: Token[] = [];
  for (let next = readToken(cursor); next; next = next.comma ? readToken(cursor) : undefined) {
    tokens.push(next.token);
  }
  return tokens;
}

/** Splits a logical line into fields and the text after its `#` (undefined without one). */
function tokenizeLine(text: string): { fields: Field[]; comment: string | undefined } {
  const cursor: Cursor = { text, pos: 0, comment: undefined };
  const fields: Field[] = [];
  while (cursor.pos < text.length) {
    const field = readField(cursor);
    if (field.length > 0) fields.push(field);
  }
  return { fields, comment: cursor.comment };
}

/** A comment's text: without the `#`, one space after it, and trailing blanks. */
function trimComment(afterHash: string): string {
  return (afterHash.startsWith(' ') ? afterHash.slice(1) : afterHash).trimEnd();
}

/**
 * A record's comment: the comment block above it without empty lines at either end, then its
 * trailing comment; undefined when that leaves nothing.
 */
function joinRecordComment(block: readonly string[], trailing: string | undefined): string | undefined {
  const first = block.findIndex((line) => line !== '');
  const last = block.findLastIndex((line) => line !== '');
  const lines = first < 0 ? [] : block.slice(first, last + 1);
  if (trailing) lines.push(trailing);
  return lines.length > 0 ? lines.join('\n') : undefined;
}

/**
 * Splits pg_hba.conf text into records, in file order. The comment lines directly above a record (no
 * blank line between) and a comment at the end of its line become its comment; other comments are
 * dropped. Nothing is refused here: every line with fields becomes a record.
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */
export function readPgHbaRecords(text: string): PgHbaRecord[] {
  const records: PgHbaRecord[] = [];
  let block: string[] = [];
  for (const logical of joinContinuations(text)) {
    const { fields, comment } = tokenizeLine(logical.text);
    const note = comment === undefined ? undefined : trimComment(comment);
    if (fields.length === 0) {
      block = note === undefined ? [] : [...block, note];
      continue;
    }
    records.push({ line: logical.line, fields, comment: joinRecordComment(block, note) });
    block = [];
  }
  return records;
}
