/**
 * Parses `hba.yaml` into HbaRule objects, reporting every problem with file:line:column and a dotted
 * path (`rules[3].address`). Pure: text in, rules (or a ConfigError) out.
 */

import type { Node } from 'yaml';
import { type At, MapReader, readBoolean, readChoice, readList, readString } from '../config/readers.ts';
import { YamlFile } from '../config/yaml-file.ts';
import { parseCidr } from './address.ts';
import {
  type AddressPattern,
  CONNECTION_TYPES,
  HBA_METHODS,
  type HbaRule,
  type NamePattern,
  PROTOCOLS,
} from './rule.ts';

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
  'allow_cleartext',
] as const;

function readNamePattern(at: At, allowReplication: boolean): NamePattern | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if (text === 'all') return { kind: 'all' };
  if (text === 'replication' && allowReplication) return { kind: 'replication' };
  if (text === '') {
    at.file.error(at.node, at.path, 'empty name');
    return undefined;
  }
  return { kind: 'name', value: text };
}

function readAddressPattern(at: At): AddressPattern | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if (text === 'all') return { kind: 'all' };
  const parsed = parseCidr(text);
  if (!parsed.ok) {
    at.file.error(at.node, at.path, parsed.message);
    return undefined;
  }
  return { kind: 'cidr', range: parsed.range };
}

function readRule(at: At, index: number): HbaRule | undefined {
  const map = MapReader.open(at, RULE_KEYS);
  if (!map) return undefined;
  const type = map.required('type', (a) => readChoice(a, CONNECTION_TYPES));
  const method = map.required('method', (a) => readChoice(a, HBA_METHODS));
  const databases = map.required('database', (a) => readList(a, (item) => readNamePattern(item, true), true));
  const users = map.required('user', (a) => readList(a, (item) => readNamePattern(item, false), true));
  const protocol = map.optional('protocol', (a) => readChoice(a, PROTOCOLS), 'pg');
  const name = map.optional('name', readString, `rule ${index + 1}`);
  const comment = map.optional('comment', readString);
  const allowCleartext = map.optional('allow_cleartext', readBoolean, false);

  let addresses: AddressPattern[] | null = null;
  if (type === 'local') {
    if (map.has('address'))
      at.file.error(map.keyNode('address'), `${at.path}.address`, 'local rules take no address');
  } else if (type !== undefined) {
    addresses = map.required('address', (a) => readList(a, readAddressPattern, true)) ?? null;
    if (addresses === null) return undefined;
  }
  if (map.has('allow_cleartext') && method !== 'password') {
    at.file.error(
      map.keyNode('allow_cleartext'),
      `${at.path}.allow_cleartext`,
      `does not apply to method "${method}"`,
    );
  }
  if (method === 'password' && (type === 'host' || type === 'hostnossl') && !allowCleartext) {
    at.file.error(
      map.at('method').node,
      `${at.path}.method`,
      `cleartext "password" on a "${type}" rule would send passwords unencrypted; use "hostssl" or set allow_cleartext: true`,
    );
  }
  if (type === undefined || method === undefined || databases === undefined || users === undefined)
    return undefined;
  const position = at.file.positionOf(at.node as Node | undefined);
  return {
    index,
    name,
    source: { file: at.file.file, line: position.line },
    type,
    protocol,
    databases,
    users,
    addresses,
    method,
    options: { allowCleartext },
    comment,
  };
}

/** Parses HBA rules from YAML text; throws ConfigError listing every problem. */
export function parseHbaText(file: string, text: string): HbaTable {
  return readHbaFile(new YamlFile(file, text));
}

/** Reads and parses an HBA file from disk; throws ConfigError listing every problem. */
export function loadHbaFile(file: string): HbaTable {
  return readHbaFile(YamlFile.read(file));
}

function readHbaFile(yaml: YamlFile): HbaTable {
  yaml.throwIfErrors();
  const top = MapReader.open({ file: yaml, node: yaml.root ?? undefined, path: '' }, ['rules']);
  const rules = top?.required('rules', (at) => readList(at, readRule));
  yaml.throwIfErrors();
  return {
    file: yaml.file,
    rules: rules ?? [],
    warnings: yaml.warnings.map((w) => `${w.file}:${w.line}:${w.column}: ${w.path}: ${w.message}`),
  };
}
