/**
 * Table-driven HBA matching, after PgBouncer's test/hba_test: each `fixtures/hba/<name>.cases` holds
 * one expectation per row against the rules in `fixtures/hba/<name>.yaml` (loaded with the real
 * parser), with users' groups from `fixtures/hba/<name>.users.yaml` when there is one.
 *
 * A row is `user database address tls protocol replication => expected`, columns separated by
 * whitespace, `#` starting a comment: address is an IP address (IPv4, IPv6, `::ffff:a.b.c.d`) or
 * `local` (a Unix socket: tls `no`, protocol `pg`), tls `yes`/`no`, protocol `pg`/`http`, replication
 * `no`/`physical`/`logical`, expected a rule name or `none`. A row may end with `todo: <reason>`: a
 * known bug, the row saying what is right (tap reports it as TODO instead of failing).
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { EMPTY_USER_DIRECTORY, loadUsersFile } from '../../../src/credentials/users-file.ts';
import { normalizeClientAddress, parseRuleAddress } from '../../../src/hba/address.ts';
import { matchHbaRule } from '../../../src/hba/match.ts';
import { loadHbaFile } from '../../../src/hba/parse.ts';
import type { ConnectionFacts, ServerInterface } from '../../../src/hba/rule.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIR = path.join(ROOT, 'fixtures', 'hba');
const MIN_ROWS = 170;

/** Files in fixtures/hba that are not rules files with a cases file beside them. */
const NOT_RULES_FILES = new Set(['bad-files.yaml', 'warning-files.yaml']);

function serverInterface(cidr: string): ServerInterface {
  const [address = '', prefix = ''] = cidr.split('/');
  const parsed = parseRuleAddress(address);
  if (!parsed) throw new Error(`bad server interface ${cidr}`);
  return { address: parsed, prefix: Number(prefix) };
}

/** The server's own interfaces for samehost and samenet; fixtures/hba/addresses.yaml documents them. */
const SERVER_INTERFACES: readonly ServerInterface[] = [
  '127.0.0.1/8',
  '192.0.2.2/24',
  '::1/128',
  'fd00::2/64',
].map(serverInterface);

/** One row of a cases file, its columns checked but not yet tied to a rules file. */
interface Row {
  /** `fixtures/hba/<name>.cases:<line>`, for messages. */
  where: string;
  /** The row as written, whitespace collapsed. */
  text: string;
  user: string;
  database: string;
  /** The client address as written, or null for a Unix socket. */
  address: string | null;
  tls: boolean;
  protocol: 'pg' | 'http';
  replication: ConnectionFacts['replication'];
  /** A rule name, or null for `none`. */
  expected: string | null;
  /** Why the row is known to fail, if it is. */
  todo: string | undefined;
}

const YES_NO: Readonly<Record<string, boolean>> = { yes: true, no: false };
const PROTOCOLS: Readonly<Record<string, Row['protocol']>> = { pg: 'pg', http: 'http' };
const REPLICATION: Readonly<Record<string, Row['replication']>> = {
  no: false,
  physical: 'physical',
  logical: 'logical',
};

/** Looks a column up in its table of allowed words; undefined if the word is not one of them. */
function column<T>(words: Readonly<Record<string, T>>, token: string): { value: T } | undefined {
  return Object.hasOwn(words, token) ? { value: words[token] as T } : undefined;
}

function allowed(name: string, words: Readonly<Record<string, unknown>>, token: string): string {
  return `${name} must be ${Object.keys(words).join(' or ')}, got "${token}"`;
}

/** Parses one non-blank row; a string is what is wrong with it. */
function parseRow(where: string, tokens: readonly string[]): Row | string {
  const [user, database, address, tlsWord, protocolWord, replicationWord, arrow, expected, ...extra] = tokens;
  if (
    user === undefined ||
    database === undefined ||
    address === undefined ||
    tlsWord === undefined ||
    protocolWord === undefined ||
    replicationWord === undefined ||
    arrow !== '=>' ||
    expected === undefined
  ) {
    return 'expected "user database address tls protocol replication => expected [todo: reason]"';
  }
  const todo = extra.length > 0 ? extra.join(' ') : undefined;
  if (todo !== undefined && !/^todo: \S/.test(todo))
    return `expected "todo: <reason>" after the rule, got "${todo}"`;
  const tls = column(YES_NO, tlsWord);
  const protocol = column(PROTOCOLS, protocolWord);
  const replication = column(REPLICATION, replicationWord);
  if (!tls) return allowed('tls', YES_NO, tlsWord);
  if (!protocol) return allowed('protocol', PROTOCOLS, protocolWord);
  if (!replication) return allowed('replication', REPLICATION, replicationWord);
  if (address === 'local' && tls.value) return 'a Unix socket has no TLS: write tls no for address local';
  if (address === 'local' && protocol.value === 'http')
    return 'HTTP is served over TCP only: write protocol pg for address local';
  // Strict: four-part IPv4 or IPv6, so that a typo such as 10.0.0 is not read as 10.0.0.0.
  if (address !== 'local' && parseRuleAddress(address) === null) {
    return `address must be local or an IP address, got "${address}"`;
  }
  return {
    where,
    text: tokens.slice(0, 8).join(' '),
    user,
    database,
    address: address === 'local' ? null : address,
    tls: tls.value,
    protocol: protocol.value,
    replication: replication.value,
    expected: expected === 'none' ? null : expected,
    todo: todo?.slice('todo: '.length),
  };
}

/** A cases file: its well-formed rows, and what is wrong with the others. */
interface CasesFile {
  name: string;
  rows: Row[];
  malformed: string[];
}

function readCasesFile(name: string): CasesFile {
  const relative = path.relative(ROOT, path.join(DIR, `${name}.cases`));
  const rows: Row[] = [];
  const malformed: string[] = [];
  readFileSync(path.join(DIR, `${name}.cases`), 'utf8')
    .split('\n')
    .forEach((line, index) => {
      const tokens = line
        .replace(/(^|\s)#.*$/, '')
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      if (tokens.length === 0) return;
      const where = `${relative}:${index + 1}`;
      const row = parseRow(where, tokens);
      if (typeof row === 'string') malformed.push(`${where}: malformed row: ${row}: ${line.trim()}`);
      else rows.push(row);
    });
  return { name, rows, malformed };
}

function factsFor(row: Row, groups: ReadonlySet<string>): ConnectionFacts {
  return {
    transport: row.address === null ? 'local' : 'tcp',
    address: row.address === null ? null : normalizeClientAddress(row.address),
    tls: row.tls,
    protocol: row.protocol,
    database: row.database,
    user: row.user,
    replication: row.replication,
    groups,
    serverInterfaces: SERVER_INTERFACES,
  };
}

const fixtureNames = readdirSync(DIR).sort();
const casesFiles = fixtureNames
  .filter((file) => file.endsWith('.cases'))
  .map((file) => readCasesFile(file.slice(0, -'.cases'.length)));

t.test('every rules file and users file in fixtures/hba has a cases file beside it', async (t) => {
  const withCases = new Set(casesFiles.map((cases) => cases.name));
  const orphans = fixtureNames.filter((file) => {
    if (!file.endsWith('.yaml') || NOT_RULES_FILES.has(file)) return false;
    return !withCases.has(file.replace(/(\.users)?\.yaml$/, ''));
  });
  t.same(orphans, [], 'files no cases file exercises');
  t.ok(casesFiles.length > 0, 'found cases files');
});

for (const cases of casesFiles) {
  t.test(`fixtures/hba/${cases.name}.cases holds against ${cases.name}.yaml`, async (t) => {
    for (const problem of cases.malformed) t.fail(problem);

    const table = loadHbaFile(path.join(DIR, `${cases.name}.yaml`));
    const usersPath = path.join(DIR, `${cases.name}.users.yaml`);
    const users = existsSync(usersPath) ? loadUsersFile(usersPath) : EMPTY_USER_DIRECTORY;
    const names = new Set(table.rules.map((rule) => rule.name));
    const noGroups: ReadonlySet<string> = new Set();

    for (const row of cases.rows) {
      if (row.expected !== null && !names.has(row.expected)) {
        t.fail(`${row.where}: no rule is named "${row.expected}" in ${cases.name}.yaml: ${row.text}`);
        continue;
      }
      const facts = factsFor(row, users.find(row.user)?.groups ?? noGroups);
      const found = matchHbaRule(table.rules, facts)?.name ?? null;
      t.equal(found, row.expected, `${row.where}: ${row.text}`, row.todo ? { todo: row.todo } : {});
    }

    for (const rule of table.rules) {
      const at = `fixtures/hba/${cases.name}.yaml:${rule.source.line}`;
      if (/^rule \d+$/.test(rule.name) || rule.name === 'none' || /\s/.test(rule.name)) {
        t.fail(`${at}: give the rule a name a row can write (one word, not "none")`);
      }
      if (!cases.rows.some((row) => row.expected === rule.name)) {
        t.fail(`${at}: rule "${rule.name}" is the expected answer of no row`);
      }
    }
  });
}

t.test(`the tables hold at least ${MIN_ROWS} rows, so they cannot shrink unnoticed`, async (t) => {
  const rows = casesFiles.reduce((sum, cases) => sum + cases.rows.length, 0);
  t.ok(rows >= MIN_ROWS, `${rows} rows in ${casesFiles.length} cases files`);
});
