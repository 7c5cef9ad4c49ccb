/**
 * Parses `hba.yaml` into HbaRule objects and ident maps, reporting every problem with file:line:column
 * and a dotted path (`rules[3].address`), and warning about rules an earlier rule shadows. Pure: text
 * in, rules (or a ConfigError) out. Patterns are patterns.ts's business, methods and options
 * rule-options.ts's, the `maps` section ident-map-parse.ts's.
 */

import type { Node } from 'yaml';
import { type At, MapReader, readChoice, readList, readString } from '../config/readers.ts';
import { YamlFile } from '../config/yaml-file.ts';
import type { IdentMap } from './ident-map.ts';
import { checkMapReference, readIdentMaps, warnUnusedMaps } from './ident-map-parse.ts';
import { ALL_FEATURES, type HbaFeatures, OPTION_KEYS } from './methods.ts';
import { readAddressPattern, readNamePattern } from './patterns.ts';
import { type AddressPattern, CONNECTION_TYPES, type HbaRule, PROTOCOLS } from './rule.ts';
import { checkCombination, type HbaReferences, readMethod, readOptions } from './rule-options.ts';

export type { HbaReferences } from './rule-options.ts';

import { findShadowingRule } from './shadow.ts';

/** A parsed HBA file: its rules in order, its ident maps, and warnings that did not stop it loading. */
export interface HbaTable {
  file: string;
  rules: readonly HbaRule[];
  /** The `maps` section by name; every `map` option of a rule names one of them. */
  maps: ReadonlyMap<string, IdentMap>;
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

function readRuleName(map: MapReader, index: number, used: Map<string, number>): string | undefined {
  if (!map.has('name')) return `rule ${index + 1}`;
  const at = map.at('name');
  const name = readString(at);
  if (name === undefined) return undefined;
  const line = used.get(name);
  if (name.trim() === '') at.file.error(at.node, at.path, 'empty name');
  else if (/^rule \d+$/.test(name)) {
    at.file.error(at.node, at.path, `"${name}" is what logs call an unnamed rule; choose another name`);
  } else if (line !== undefined) {
    at.file.error(at.node, at.path, `rule name "${name}" is already used at line ${line}`);
  } else {
    used.set(name, at.file.positionOf(at.node).line);
    return name;
  }
  return undefined;
}

/** An empty list would make a rule that matches nothing: almost certainly a mistake. */
function refuseEmpty<T>(map: MapReader, key: string, list: readonly T[] | undefined | null): void {
  if (list?.length === 0)
    map.file.error(map.at(key).node, `${map.path}.${key}`, 'an empty list matches nothing');
}

/** What reading one rule needs from the rest of the file. */
interface RuleContext {
  options: Required<HbaParseOptions>;
  /** Rule names already used, with their lines. */
  names: Map<string, number>;
  /** Every map name the file writes, and those the rules name so far. */
  mapNames: ReadonlySet<string>;
  usedMaps: Set<string>;
}

function readRule(at: At, index: number, context: RuleContext): HbaRule | undefined {
  const { options, names } = context;
  const { features, references } = options;
  const map = MapReader.open(at, RULE_KEYS);
  if (!map) return undefined;
  const type = map.required('type', (a) => readChoice(a, CONNECTION_TYPES));
  const method = map.required('method', (a) => readMethod(a, features));
  const databases = map.required('database', (a) =>
    readList(a, (item) => readNamePattern(item, 'database'), true),
  );
  const users = map.required('user', (a) => readList(a, (item) => readNamePattern(item, 'user'), true));
  const protocol = map.optional('protocol', (a) => readChoice(a, PROTOCOLS), 'pg');
  const name = readRuleName(map, index, names);
  const comment = map.optional('comment', readString);
  const ruleOptions = readOptions(map, method, features, references);
  if (ruleOptions.map !== undefined) {
    checkMapReference(map, ruleOptions.map, context.mapNames);
    context.usedMaps.add(ruleOptions.map);
  }

  let addresses: AddressPattern[] | null = null;
  if (type === 'local') {
    if (map.has('address'))
      at.file.error(map.keyNode('address'), `${at.path}.address`, 'local rules take no address');
  } else if (type !== undefined) {
    addresses = map.required('address', (a) => readList(a, readAddressPattern, true)) ?? null;
  }
  refuseEmpty(map, 'database', databases);
  refuseEmpty(map, 'user', users);
  refuseEmpty(map, 'address', addresses);
  if (type !== undefined && method !== undefined) checkCombination(map, type, protocol, method, ruleOptions);
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
    options: ruleOptions,
    comment,
  };
}

/** How to parse. */
export interface HbaParseOptions {
  /** The methods and options this pgward implements; all of the table by default. */
  features?: HbaFeatures;
  /** Names in pgward.yaml rules may refer to; unchecked by default. */
  references?: HbaReferences;
}

function withDefaults(options: HbaParseOptions): Required<HbaParseOptions> {
  return { features: options.features ?? ALL_FEATURES, references: options.references ?? {} };
}

/** Parses HBA rules from YAML text; throws ConfigError listing every problem. */
export function parseHbaText(file: string, text: string, options: HbaParseOptions = {}): HbaTable {
  return readHbaFile(new YamlFile(file, text), withDefaults(options));
}

/** Reads and parses an HBA file from disk; throws ConfigError listing every problem. */
export function loadHbaFile(file: string, options: HbaParseOptions = {}): HbaTable {
  return readHbaFile(YamlFile.read(file), withDefaults(options));
}

function readHbaFile(yaml: YamlFile, options: Required<HbaParseOptions>): HbaTable {
  yaml.throwIfErrors();
  const top = MapReader.open({ file: yaml, node: yaml.root ?? undefined, path: '' }, ['rules', 'maps']);
  const section = readIdentMaps(top?.has('maps') ? top.at('maps') : undefined);
  const context: RuleContext = { options, names: new Map(), mapNames: section.names, usedMaps: new Set() };
  const rules = top?.required('rules', (at) => readList(at, (item, index) => readRule(item, index, context)));
  if (rules) {
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
  warnUnusedMaps(yaml, section.maps, context.usedMaps);
  yaml.throwIfErrors();
  return {
    file: yaml.file,
    rules: rules ?? [],
    maps: section.maps,
    warnings: yaml.warnings.map((w) => `${w.file}:${w.line}:${w.column}: ${w.path}: ${w.message}`),
  };
}
