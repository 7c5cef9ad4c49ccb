/**
 * Explains a match: which rule a connection would hit and, for each earlier rule, the field that did
 * not match and why, in words an operator can act on. Pure; `pgward explain` prints it.
 */

import { findMismatch, type Mismatch } from './match.ts';
import type { AddressPattern, ConnectionFacts, HbaRule, NamePattern } from './rule.ts';

/** An earlier rule and why it did not match. */
export interface SkippedRule {
  rule: HbaRule;
  field: Mismatch;
  reason: string;
}

/** The outcome of matching, with the reasons. */
export interface Explanation {
  skipped: SkippedRule[];
  matched: HbaRule | null;
}

function describeName(pattern: NamePattern): string {
  switch (pattern.kind) {
    case 'group':
      return `+${pattern.group}`;
    case 'regex':
      return `/${pattern.source}`;
    case 'name':
      return `"${pattern.value}"`;
    default:
      return pattern.kind;
  }
}

function describeAddress(pattern: AddressPattern): string {
  return pattern.kind === 'cidr' ? pattern.range.text : pattern.kind;
}

function list(items: readonly string[]): string {
  return items.length === 1 ? (items[0] ?? '') : `any of ${items.join(', ')}`;
}

function connectionType(facts: ConnectionFacts): string {
  if (facts.transport === 'local') return 'a Unix-socket connection';
  return facts.tls ? 'a TCP/IP connection with TLS' : 'a TCP/IP connection without TLS';
}

function reasonFor(field: Mismatch, rule: HbaRule, facts: ConnectionFacts): string {
  switch (field) {
    case 'type':
      return `the rule is ${rule.type}, this is ${connectionType(facts)}`;
    case 'protocol':
      return `the rule is for protocol ${rule.protocol}, this connection uses ${facts.protocol}`;
    case 'address': {
      const family = facts.address?.kind() === 'ipv6' ? 'IPv6' : 'IPv4';
      return `${facts.address?.toString()} (${family}) is not ${list((rule.addresses ?? []).map(describeAddress))}`;
    }
    case 'database':
      return facts.replication === 'physical'
        ? 'a physical replication connection matches only the replication keyword'
        : `database "${facts.database}" is not ${list(rule.databases.map(describeName))}`;
    case 'user': {
      const groups = facts.groups.size > 0 ? ` (groups: ${[...facts.groups].join(', ')})` : ' (in no group)';
      return `user "${facts.user}"${groups} is not ${list(rule.users.map(describeName))}`;
    }
  }
}

/** Matches the facts against the rules, keeping the reason each earlier rule was passed over. */
export function explainMatch(rules: readonly HbaRule[], facts: ConnectionFacts): Explanation {
  const skipped: SkippedRule[] = [];
  for (const rule of rules) {
    const field = findMismatch(rule, facts);
    if (field === null) return { skipped, matched: rule };
    skipped.push({ rule, field, reason: reasonFor(field, rule, facts) });
  }
  return { skipped, matched: null };
}
