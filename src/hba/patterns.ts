/**
 * The database, user and address patterns of an HBA rule, as written in hba.yaml. Keywords (`all`,
 * `sameuser`, `samerole`, `replication`, `samehost`, `samenet`) and the `+group` and `/regex` prefixes
 * are recognized only in plain scalars: a quoted scalar is always a literal name, as a double-quoted
 * word is in pg_hba.conf.
 */

import { isScalar, type Node } from 'yaml';
import { type At, readString } from '../config/readers.ts';
import { parseCidr } from './address.ts';
import type { AddressPattern, NamePattern } from './rule.ts';

const DATABASE_KEYWORDS: Readonly<Record<string, NamePattern>> = {
  all: { kind: 'all' },
  sameuser: { kind: 'sameuser' },
  samerole: { kind: 'samerole' },
  samegroup: { kind: 'samerole' },
  replication: { kind: 'replication' },
};

/** True for a single- or double-quoted scalar (never a keyword). */
export function isQuoted(node: Node | undefined): boolean {
  return isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE');
}

function readRegex(at: At, source: string): NamePattern | undefined {
  if (source === '') {
    at.file.error(at.node, at.path, 'empty regular expression after "/" (it would match every name)');
    return undefined;
  }
  try {
    // No `u` flag: PostgreSQL's regular expressions accept escapes such as \- that it would refuse.
    return { kind: 'regex', source, regex: new RegExp(source) };
  } catch (error) {
    at.file.error(at.node, at.path, `invalid regular expression /${source}: ${(error as Error).message}`);
    return undefined;
  }
}

/** Reads one database or user pattern. */
export function readNamePattern(at: At, field: 'database' | 'user'): NamePattern | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if (text === '') {
    at.file.error(at.node, at.path, 'empty name');
    return undefined;
  }
  if (isQuoted(at.node)) {
    if (text === 'all' || (field === 'database' && text in DATABASE_KEYWORDS)) {
      at.file.warn(
        at.node,
        at.path,
        `"${text}" in quotes is the ${field} named ${text}, not the keyword; write ${text} without quotes for the keyword`,
      );
    }
    return { kind: 'name', value: text };
  }
  const keyword = DATABASE_KEYWORDS[text];
  if (keyword && (field === 'database' || text === 'all')) return keyword;
  if (keyword) {
    at.file.error(
      at.node,
      at.path,
      `"${text}" is a database keyword; quote it ("${text}") for a user of that name`,
    );
    return undefined;
  }
  if (text.startsWith('/')) return readRegex(at, text.slice(1));
  if (text.startsWith('+')) {
    if (field === 'database' || text.length === 1) {
      at.file.error(
        at.node,
        at.path,
        field === 'database' ? '+group applies to user, not database' : 'a group name must follow "+"',
      );
      return undefined;
    }
    return { kind: 'group', group: text.slice(1) };
  }
  if (text.startsWith('@')) {
    at.file.error(at.node, at.path, '@file inclusion is pg_hba.conf syntax; list the names here instead');
    return undefined;
  }
  return { kind: 'name', value: text };
}

/** Reads one address pattern of a non-local rule. */
export function readAddressPattern(at: At): AddressPattern | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  const keyword = text === 'all' || text === 'samehost' || text === 'samenet';
  if (keyword && !isQuoted(at.node)) return { kind: text };
  if (keyword) {
    at.file.error(at.node, at.path, `"${text}" in quotes would be a host name; write ${text} without quotes`);
    return undefined;
  }
  const parsed = parseCidr(text);
  if (parsed.ok) return { kind: 'cidr', range: parsed.range };
  const hostname = /^\.?[A-Za-z][A-Za-z0-9.-]*$/.test(text) && !text.includes(':');
  at.file.error(
    at.node,
    at.path,
    hostname
      ? `host names are not supported ("${text}"); write an address, a CIDR, all, samehost or samenet`
      : parsed.message,
  );
  return undefined;
}
