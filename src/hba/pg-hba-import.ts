/**
 * Converts a PostgreSQL `pg_hba.conf` into pgward's `hba.yaml` (`pgward hba import`). Owns the meaning
 * of each record: its connection type, database and user names (keywords, `+group`, `/regex`, quoted
 * literals), address (CIDR, address and netmask, `samehost`, `samenet`), method and options, checked as
 * PostgreSQL checks them and mapped onto a pgward rule. Records pgward cannot express are left out and
 * reported. Does not tokenize pg_hba.conf (pg-hba-reader.ts does) or decide how values are written as
 * YAML (pg-hba-yaml.ts does). Pure: text in, YAML text and problems out.
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */

import { METHOD_SPECS, type OptionKey } from './methods.ts';
import { readAddress } from './pg-hba-address.ts';
import {
  FieldQueue,
  type ImportProblem,
  LineReport,
  requireField,
  requireSingleToken,
  takeSingleToken,
} from './pg-hba-line.ts';
import { type Field, type PgHbaRecord, readPgHbaRecords, type Token } from './pg-hba-reader.ts';
import {
  type RecordOutcome,
  type RuleDraft,
  survivesPlain,
  writeHbaYaml,
  type YamlValue,
} from './pg-hba-yaml.ts';
import { CONNECTION_TYPES, type ConnectionType, HBA_METHODS, type HbaMethod } from './rule.ts';

export type { ImportProblem } from './pg-hba-line.ts';

/** The result of converting a pg_hba.conf. */
export interface PgHbaConversion {
  /** The hba.yaml text, with a comment header; rules that could not be converted are left out. */
  yaml: string;
  /** Every problem, in line order. */
  problems: ImportProblem[];
}

const INCLUDE_DIRECTIVES = new Set(['include', 'include_if_exists', 'include_dir']);
const DATABASE_KEYWORDS = new Set(['all', 'sameuser', 'samerole', 'samegroup', 'replication']);

/** pg_hba.conf methods pgward has under the same name. */
const CONVERTIBLE_METHODS: ReadonlySet<string> = new Set<HbaMethod>([
  'trust',
  'reject',
  'password',
  'md5',
  'scram-sha-256',
  'cert',
]);
const FOREIGN_METHODS = new Set(['ident', 'peer', 'gss', 'sspi', 'ldap', 'radius', 'pam', 'bsd']);

const OAUTH_MESSAGE =
  'method "oauth" cannot be converted: its validator names a PostgreSQL server library, while ' +
  "pgward's names one of the token_validators in pgward.yaml; write this rule in hba.yaml by hand " +
  'with method: oauth, validator: <a token_validators name>, and the issuer and scope of this line';

/** pg_hba.conf options pgward takes under the same name, with the values each accepts (all if none). */
const CARRIED_OPTIONS: ReadonlyMap<string, readonly string[] | undefined> = new Map([
  ['clientcert', ['verify-ca', 'verify-full']],
  ['clientname', ['CN', 'DN']],
  ['map', undefined],
]);

function isCarriedOption(name: string): name is OptionKey {
  return CARRIED_OPTIONS.has(name);
}

function readType(field: Field, report: LineReport): ConnectionType | undefined {
  const text = takeSingleToken(field, 'connection type', report)?.text;
  if (text === undefined) return undefined;
  if (text === 'hostgssenc') {
    report.warn('hostgssenc rules never match in pgward, which refuses GSSAPI encryption; line skipped');
    return undefined;
  }
  if (text === 'hostnogssenc') {
    report.warn('hostnogssenc written as host: no pgward connection uses GSSAPI encryption');
    return 'host';
  }
  if ((CONNECTION_TYPES as readonly string[]).includes(text)) return text as ConnectionType;
  return report.error(`invalid connection type "${text}"`);
}

/** A keyword, `+group` or `/regex`, which pgward only recognizes written plain. */
function requirePlain(text: string, what: string, report: LineReport): YamlValue | undefined {
  if (survivesPlain(text, false)) return { text, style: 'plain' };
  return report.error(`${what} "${text}" cannot be written as a plain YAML scalar, which pgward needs`);
}

function readRegex(text: string, report: LineReport): YamlValue | undefined {
  try {
    new RegExp(text.slice(1), 'u');
  } catch (error) {
    return report.error(
      `regular expression "${text}" is not valid in pgward, which uses JavaScript's syntax: ${(error as Error).message}`,
    );
  }
  return requirePlain(text, 'regular expression', report);
}

/** A database or user token, with PostgreSQL's meaning (parse_hba_line, check_db, check_role). */
function readName(token: Token, field: 'database' | 'user', report: LineReport): YamlValue | undefined {
  const { text, quoted } = token;
  if (!quoted && text.length > 1 && text.startsWith('@')) {
    return report.error(`@file inclusion is not supported ("${text}"); list the names in hba.yaml instead`);
  }
  // PostgreSQL compiles a regular expression for any name starting with "/", quoted or not.
  if (text.startsWith('/')) return readRegex(text, report);
  const keyword = field === 'database' ? DATABASE_KEYWORDS.has(text) : text === 'all';
  if (!quoted && keyword) return { text, style: 'plain' };
  if (!quoted && field === 'user' && text.startsWith('+')) {
    if (text === '+') return report.error('a group name must follow "+"');
    return requirePlain(text, 'group', report);
  }
  if (text === '') return report.error(`empty ${field} name ""`);
  const plainMeansMore = DATABASE_KEYWORDS.has(text) || text.startsWith('+') || text.startsWith('@');
  return { text, style: quoted || plainMeansMore ? 'quoted' : 'any' };
}

function readNames(field: Field, kind: 'database' | 'user', report: LineReport): YamlValue[] | undefined {
  const values = field.map((token) => readName(token, kind, report));
  return values.every((value) => value !== undefined) ? values : undefined;
}

/** The database and user fields; both are read, so both report their problems. */
function readDatabasesAndUsers(
  fields: FieldQueue,
  report: LineReport,
): Pick<RuleDraft, 'databases' | 'users'> | undefined {
  const databaseField = requireField(fields.take(), 'database specification', report);
  if (databaseField === undefined) return undefined;
  const userField = requireField(fields.take(), 'role specification', report);
  if (userField === undefined) return undefined;
  const databases = readNames(databaseField, 'database', report);
  const users = readNames(userField, 'user', report);
  return databases && users && { databases, users };
}

function readMethod(
  field: Field | undefined,
  type: ConnectionType,
  report: LineReport,
): HbaMethod | undefined {
  const name = requireSingleToken(field, 'authentication method', 'authentication type', report)?.text;
  if (name === undefined) return undefined;
  if (name === 'oauth') return report.error(OAUTH_MESSAGE);
  if (FOREIGN_METHODS.has(name)) {
    return report.error(
      `authentication method "${name}" has no pgward equivalent (pgward has ${HBA_METHODS.join(', ')})`,
    );
  }
  if (!CONVERTIBLE_METHODS.has(name)) return report.error(`invalid authentication method "${name}"`);
  if (name === 'cert' && type !== 'hostssl') {
    return report.error('cert authentication is only supported on hostssl connections');
  }
  return name as HbaMethod;
}

/** Reads one `name=value` option; undefined when it is refused (error) or dropped (warning). */
function readOption(
  token: Token,
  method: HbaMethod,
  type: ConnectionType,
  report: LineReport,
): [OptionKey, string] | undefined {
  const equals = token.text.indexOf('=');
  if (equals < 0) return report.error(`authentication option not in name=value format: ${token.text}`);
  const name = token.text.slice(0, equals);
  const value = token.text.slice(equals + 1);
  if ((name === 'clientcert' || name === 'clientname') && type !== 'hostssl') {
    return report.error(`${name} can only be configured for hostssl rules`);
  }
  const takes = METHOD_SPECS[method].options.filter(isCarriedOption);
  if (!isCarriedOption(name) || !takes.includes(name)) {
    if (method === 'reject') {
      report.warn(`option "${name}" has no effect on a reject rule; dropped`);
      return undefined;
    }
    const list = takes.length > 0 ? `it takes ${takes.join(', ')}` : 'it takes no options';
    return report.error(`option "${name}" does not apply to method "${method}" in pgward (${list})`);
  }
  const values = CARRIED_OPTIONS.get(name);
  if (values && !values.includes(value)) {
    return report.error(`invalid value for ${name}: "${value}" (use ${values.join(' or ')})`);
  }
  if (method === 'cert' && name === 'clientcert' && value === 'verify-ca') {
    return report.error('clientcert only accepts "verify-full" when using "cert" authentication');
  }
  if (name === 'map') {
    report.warn(
      `map "${value}" kept, but pg_ident.conf is not imported: hba.yaml loads only once its maps section defines ${value}`,
    );
  }
  return [name, value];
}

/** The options after the method, plus `allow_cleartext` where pgward needs it to keep the rule. */
function readOptions(
  fields: readonly Field[],
  method: HbaMethod,
  type: ConnectionType,
  report: LineReport,
): Map<OptionKey, string | boolean> {
  const options = new Map<OptionKey, string | boolean>();
  for (const token of fields.flat()) {
    const option = readOption(token, method, type, report);
    if (option) options.set(...option);
  }
  if (METHOD_SPECS[method].cleartextSecret && (type === 'host' || type === 'hostnossl')) {
    options.set('allow_cleartext', true);
    report.warn(`cleartext ${method} over ${type} rule kept with allow_cleartext: true; consider hostssl`);
  }
  return options;
}

/** Converts one record; undefined when it cannot be (the report says why). */
function convertRecord(record: PgHbaRecord, report: LineReport): RuleDraft | undefined {
  const fields = new FieldQueue(record.fields);
  const typeField = fields.take() ?? [];
  if (INCLUDE_DIRECTIVES.has(typeField[0]?.text ?? '')) {
    return report.error('include directives are not supported; import the included file separately');
  }
  const type = readType(typeField, report);
  if (type === undefined) return undefined;
  const who = readDatabasesAndUsers(fields, report);
  if (who === undefined) return undefined;
  const address = type === 'local' ? undefined : readAddress(fields, report);
  if (type !== 'local' && address === undefined) return undefined;
  const method = readMethod(fields.take(), type, report);
  if (method === undefined) return undefined;
  const options = readOptions(fields.rest(), method, type, report);
  if (report.hasErrors) return undefined;
  return { comment: record.comment, type, ...who, address, method, options };
}

/**
 * Converts pg_hba.conf text into hba.yaml text. `file` is only used in the YAML's header comment.
 * Records pgward cannot express are left out, with an error (or, for `hostgssenc`, a warning), and a
 * comment in the YAML where they were.
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */
export function convertPgHba(file: string, text: string): PgHbaConversion {
  const problems: ImportProblem[] = [];
  const outcomes = readPgHbaRecords(text).map((record): RecordOutcome => {
    const report = new LineReport(record.line);
    const rule = convertRecord(record, report);
    problems.push(...report.problems);
    return rule
      ? { kind: 'rule', rule }
      : { kind: 'skipped', line: record.line, reasons: report.skipReasons };
  });
  return { yaml: writeHbaYaml(file, outcomes), problems };
}
