/**
 * Parses `hba.yaml` into HbaRule objects, reporting every problem with file:line:column and a dotted
 * path (`rules[3].address`), and warning about rules an earlier rule shadows. Pure: text in, rules (or
 * a ConfigError) out.
 *
 * Keywords (`all`, `sameuser`, `samerole`, `replication`, `samehost`, `samenet`) and the `+group` and
 * `/regex` prefixes are recognized only in plain scalars: a quoted scalar is always a literal name, as
 * a double-quoted word is in pg_hba.conf.
 */

import { isScalar, type Node } from 'yaml';
import { type At, MapReader, readBoolean, readChoice, readList, readString } from '../config/readers.ts';
import { YamlFile } from '../config/yaml-file.ts';
import { parseCidr } from './address.ts';
import { ALL_FEATURES, type HbaFeatures, METHOD_SPECS, OPTION_KEYS, type OptionKey } from './methods.ts';
import {
  type AddressPattern,
  CONNECTION_TYPES,
  type ConnectionType,
  HBA_METHODS,
  type HbaMethod,
  type HbaRule,
  type NamePattern,
  PROTOCOLS,
  type RuleOptions,
} from './rule.ts';
import { findShadowingRule } from './shadow.ts';

/** A parsed HBA file: its rules in order, and warnings that did not stop it loading. */
export interface HbaTable {
  file: string;
  rules: readonly HbaRule[];
  warnings: readonly string[];
}

const RULE_KEYS = [
  'name',
  'comment',
  'type',
  'protocol',
  'database',
  'user',
  'address',
  'method',
  ...OPTION_KEYS,
] as const;

const DATABASE_KEYWORDS: Readonly<Record<string, NamePattern>> = {
  all: { kind: 'all' },
  sameuser: { kind: 'sameuser' },
  samerole: { kind: 'samerole' },
  samegroup: { kind: 'samerole' },
  replication: { kind: 'replication' },
};

function isQuoted(node: Node | undefined): boolean {
  return isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE');
}

function readRegex(at: At, source: string): NamePattern | undefined {
  try {
    return { kind: 'regex', source, regex: new RegExp(source, 'u') };
  } catch (error) {
    at.file.error(at.node, at.path, `invalid regular expression /${source}: ${(error as Error).message}`);
    return undefined;
  }
}

function readNamePattern(at: At, field: 'database' | 'user'): NamePattern | undefined {
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

function readAddressPattern(at: At): AddressPattern | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if (!isQuoted(at.node) && (text === 'all' || text === 'samehost' || text === 'samenet'))
    return { kind: text };
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

function readHttpsUrl(at: At): string | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if (URL.canParse(text) && /^https?:$/.test(new URL(text).protocol)) return text;
  at.file.error(at.node, at.path, `expected an http(s) URL, got "${text}"`);
  return undefined;
}

/** How each option's value is read. */
const OPTION_READERS: { [K in OptionKey]: (at: At) => RuleOptions[CamelOption<K>] | undefined } = {
  allow_cleartext: readBoolean,
  clientcert: (at) => readChoice(at, ['verify-ca', 'verify-full'] as const),
  clientname: (at) => readChoice(at, ['CN', 'DN'] as const),
  map: readString,
  validator: readString,
  issuer: readHttpsUrl,
  scope: readString,
  server: readString,
  profile: readString,
};

type CamelOption<K extends string> = K extends 'allow_cleartext' ? 'allowCleartext' : K;

/** Reads the options present, refusing those the method does not take. */
function readOptions(map: MapReader, method: HbaMethod | undefined, features: HbaFeatures): RuleOptions {
  const options: RuleOptions = {
    allowCleartext: false,
    clientcert: undefined,
    clientname: undefined,
    map: undefined,
    validator: undefined,
    issuer: undefined,
    scope: undefined,
    server: undefined,
    profile: undefined,
  };
  const spec = method === undefined ? undefined : METHOD_SPECS[method];
  for (const key of OPTION_KEYS) {
    if (!map.has(key)) continue;
    const where = `${map.path}.${key}`;
    if (spec && !spec.options.includes(key)) {
      const takes = spec.options.length > 0 ? `it takes ${spec.options.join(', ')}` : 'it takes no options';
      map.file.error(map.keyNode(key), where, `"${key}" does not apply to method "${method}" (${takes})`);
      continue;
    }
    if (!features.hasOption(key)) {
      map.file.error(map.keyNode(key), where, `option "${key}" is not supported by this version of pgward`);
      continue;
    }
    const value = OPTION_READERS[key](map.at(key));
    if (value === undefined) continue;
    if (key === 'allow_cleartext') options.allowCleartext = value as boolean;
    else (options as unknown as Record<string, unknown>)[key] = value;
  }
  for (const key of spec?.required ?? []) {
    if (!map.has(key)) map.file.error(map.node, map.path, `method "${method}" needs "${key}"`);
  }
  return options;
}

/** Checks that type, method and options fit together (PostgreSQL's own checks, and TLS for secrets). */
function checkCombination(
  map: MapReader,
  type: ConnectionType,
  method: HbaMethod,
  options: RuleOptions,
): void {
  const spec = METHOD_SPECS[method];
  const file = map.file;
  if (spec.hostsslOnly && type !== 'hostssl') {
    file.error(
      map.at('method').node,
      `${map.path}.method`,
      `method "${method}" is only available on hostssl rules`,
    );
  }
  if (map.has('clientcert') && type !== 'hostssl') {
    file.error(
      map.keyNode('clientcert'),
      `${map.path}.clientcert`,
      'clientcert can only be configured for hostssl rules',
    );
  }
  if (method === 'cert' && options.clientcert === 'verify-ca') {
    file.error(
      map.at('clientcert').node,
      `${map.path}.clientcert`,
      'clientcert only accepts "verify-full" when using "cert" authentication',
    );
  }
  const unencrypted = type === 'host' || type === 'hostnossl';
  if (spec.cleartextSecret && unencrypted && !options.allowCleartext) {
    file.error(
      map.at('method').node,
      `${map.path}.method`,
      `"${method}" on a "${type}" rule would accept secrets sent unencrypted; use "hostssl" or set allow_cleartext: true`,
    );
  }
  if (map.has('allow_cleartext') && !unencrypted) {
    file.error(
      map.keyNode('allow_cleartext'),
      `${map.path}.allow_cleartext`,
      `applies to host and hostnossl rules only (${type === 'local' ? 'a Unix socket never leaves the machine' : 'hostssl connections are always encrypted'})`,
    );
  }
}

function readMethod(at: At, features: HbaFeatures): HbaMethod | undefined {
  const method = readChoice(at, HBA_METHODS);
  if (method !== undefined && !features.hasMethod(method)) {
    at.file.error(at.node, at.path, `method "${method}" is not supported by this version of pgward`);
    return undefined;
  }
  return method;
}

function readRule(at: At, index: number, features: HbaFeatures): HbaRule | undefined {
  const map = MapReader.open(at, RULE_KEYS);
  if (!map) return undefined;
  const type = map.required('type', (a) => readChoice(a, CONNECTION_TYPES));
  const method = map.required('method', (a) => readMethod(a, features));
  const databases = map.required('database', (a) =>
    readList(a, (item) => readNamePattern(item, 'database'), true),
  );
  const users = map.required('user', (a) => readList(a, (item) => readNamePattern(item, 'user'), true));
  const protocol = map.optional('protocol', (a) => readChoice(a, PROTOCOLS), 'pg');
  const name = map.optional('name', readString, `rule ${index + 1}`);
  const comment = map.optional('comment', readString);
  const options = readOptions(map, method, features);

  let addresses: AddressPattern[] | null = null;
  if (type === 'local') {
    if (map.has('address'))
      at.file.error(map.keyNode('address'), `${at.path}.address`, 'local rules take no address');
  } else if (type !== undefined) {
    addresses = map.required('address', (a) => readList(a, readAddressPattern, true)) ?? null;
  }
  if (type !== undefined && method !== undefined) checkCombination(map, type, method, options);
  if (type === undefined || method === undefined || databases === undefined || users === undefined)
    return undefined;
  if (protocol === undefined || name === undefined || (type !== 'local' && addresses === null))
    return undefined;
  const position = at.file.positionOf(at.node as Node | undefined);
  return {
    index,
    name,
    source: { file: at.file.file, ...position },
    type,
    protocol,
    databases,
    users,
    addresses,
    method,
    options,
    comment,
  };
}

/** How to parse. */
export interface HbaParseOptions {
  /** The methods and options this pgward implements; all of the table by default. */
  features?: HbaFeatures;
}

/** Parses HBA rules from YAML text; throws ConfigError listing every problem. */
export function parseHbaText(file: string, text: string, options: HbaParseOptions = {}): HbaTable {
  return readHbaFile(new YamlFile(file, text), options.features ?? ALL_FEATURES);
}

/** Reads and parses an HBA file from disk; throws ConfigError listing every problem. */
export function loadHbaFile(file: string, options: HbaParseOptions = {}): HbaTable {
  return readHbaFile(YamlFile.read(file), options.features ?? ALL_FEATURES);
}

function checkNames(yaml: YamlFile, rules: readonly HbaRule[], listNode: Node | undefined): void {
  const seen = new Map<string, HbaRule>();
  for (const rule of rules) {
    const earlier = seen.get(rule.name);
    if (earlier) {
      const item = yaml.resolve((listNode as { items?: unknown[] } | undefined)?.items?.[rule.index]);
      yaml.error(
        item,
        `rules[${rule.index}].name`,
        `rule name "${rule.name}" is already used at line ${earlier.source.line}`,
      );
    } else seen.set(rule.name, rule);
  }
}

function readHbaFile(yaml: YamlFile, features: HbaFeatures): HbaTable {
  yaml.throwIfErrors();
  const top = MapReader.open({ file: yaml, node: yaml.root ?? undefined, path: '' }, ['rules']);
  const rules = top?.required('rules', (at) =>
    readList(at, (item, index) => readRule(item, index, features)),
  );
  if (rules) {
    checkNames(yaml, rules, top?.at('rules').node);
    for (const rule of rules) {
      const earlier = findShadowingRule(rules, rule);
      if (earlier) {
        yaml.warnings.push({
          ...rule.source,
          path: `rules[${rule.index}]`,
          message: `rule "${rule.name}" can never match: rule "${earlier.name}" (line ${earlier.source.line}) matches every connection it would`,
        });
      }
    }
  }
  yaml.throwIfErrors();
  return {
    file: yaml.file,
    rules: rules ?? [],
    warnings: yaml.warnings.map((w) => `${w.file}:${w.line}:${w.column}: ${w.path}: ${w.message}`),
  };
}
