/**
 * Writes the hba.yaml of `pgward hba import` so that pgward reads it back with the meaning pg_hba.conf
 * gave each value. Owns the scalar decisions (keywords, `+group` and `/regex` plain, since pgward
 * recognizes them only there; literal names double-quoted where asked; a block list when a plain value
 * cannot sit in a flow one) and the document: header comment, one rule per record, and a comment where
 * each left-out record was. Does not read pg_hba.conf or decide what a value means or whether a record
 * converts: pg-hba-reader.ts and pg-hba-import.ts do. Pure.
 */

import { Document, isScalar, isSeq, parseDocument, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { OPTION_KEYS, type OptionKey } from './methods.ts';
import type { ConnectionType, HbaMethod } from './rule.ts';

/** How a value must be written for pgward to read it as pg_hba.conf meant it. */
export type ValueStyle =
  /** A keyword, `+group` or `/regex`: pgward recognizes them only in plain scalars. */
  | 'plain'
  /** A literal name that would mean something else written plain (or was quoted in pg_hba.conf). */
  | 'quoted'
  /** A literal either way: the YAML library picks (and quotes numbers, `true` and the like). */
  | 'any';

/** A value to write, and how. */
export interface YamlValue {
  text: string;
  style: ValueStyle;
}

/** A rule converted from one record, ready to be written. */
export interface RuleDraft {
  comment: string | undefined;
  type: ConnectionType;
  databases: readonly YamlValue[];
  users: readonly YamlValue[];
  /** Undefined for local rules. */
  address: YamlValue | undefined;
  method: HbaMethod;
  options: ReadonlyMap<OptionKey, string | boolean>;
}

/** What became of one pg_hba.conf record: a rule, or the reasons it was left out. */
export type RecordOutcome =
  | { kind: 'rule'; rule: RuleDraft }
  | { kind: 'skipped'; line: number; reasons: readonly string[] };

/**
 * True when `text`, written as a plain YAML scalar (as a list item, in a flow list if `inFlow`), reads
 * back as that same plain string.
 */
export function survivesPlain(text: string, inFlow: boolean): boolean {
  const scalar = new Scalar(text);
  scalar.type = Scalar.PLAIN;
  const list = new YAMLSeq();
  list.flow = inFlow;
  list.items.push(scalar);
  const back = parseDocument(new Document(list).toString()).contents;
  const item = isSeq(back) ? back.items[0] : undefined;
  return isScalar(item) && item.type === Scalar.PLAIN && item.value === text;
}

function buildScalar(value: YamlValue): Scalar {
  const scalar = new Scalar(value.text);
  if (value.style === 'plain') scalar.type = Scalar.PLAIN;
  if (value.style === 'quoted') scalar.type = Scalar.QUOTE_DOUBLE;
  return scalar;
}

/** One value as a scalar; several as a flow sequence, or a block one when a plain value needs it. */
function buildValues(values: readonly YamlValue[]): Scalar | YAMLSeq {
  const [only] = values;
  if (values.length === 1 && only) return buildScalar(only);
  const list = new YAMLSeq();
  list.flow = values.every((value) => value.style !== 'plain' || survivesPlain(value.text, true));
  list.items.push(...values.map(buildScalar));
  return list;
}

function buildRule(rule: RuleDraft): YAMLMap {
  const map = new YAMLMap();
  if (rule.comment !== undefined) map.set('comment', new Scalar(rule.comment));
  map.set('type', new Scalar(rule.type));
  map.set('database', buildValues(rule.databases));
  map.set('user', buildValues(rule.users));
  if (rule.address) map.set('address', buildScalar(rule.address));
  map.set('method', new Scalar(rule.method));
  for (const key of OPTION_KEYS) {
    const value = rule.options.get(key);
    if (value !== undefined) map.set(key, new Scalar(value));
  }
  return map;
}

function formatCount(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * Writes hba.yaml: a header naming `file` (for the comment only) and counting rules and skipped lines,
 * then a `rules` list in record order. The reasons a record was skipped become comment lines above the
 * next rule, or at the end of the document after the last one.
 */
export function writeHbaYaml(file: string, outcomes: readonly RecordOutcome[]): string {
  const rules = new YAMLSeq();
  let notes: string[] = [];
  for (const outcome of outcomes) {
    if (outcome.kind === 'skipped') {
      notes.push(...outcome.reasons.map((reason) => ` line ${outcome.line} not converted: ${reason}`));
      continue;
    }
    const node = buildRule(outcome.rule);
    node.spaceBefore = rules.items.length > 0;
    if (notes.length > 0) node.commentBefore = notes.join('\n');
    notes = [];
    rules.items.push(node);
  }
  const skipped = outcomes.length - rules.items.length;
  const doc = new Document(new YAMLMap());
  doc.set('rules', rules);
  doc.commentBefore = [
    ` Converted from ${file} by pgward hba import`,
    ` ${formatCount(rules.items.length, 'rule')} converted, ${formatCount(skipped, 'line')} skipped`,
  ].join('\n');
  if (notes.length > 0) doc.comment = notes.join('\n');
  return doc.toString({ flowCollectionPadding: false, lineWidth: 0 });
}
