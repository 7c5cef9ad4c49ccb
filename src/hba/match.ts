/**
 * The HBA matcher: a pure function from connection facts to the first rule that matches, with
 * PostgreSQL's semantics (first match wins; the caller never falls through to later rules).
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */

import { cidrContains } from './address.ts';
import type { AddressPattern, ConnectionFacts, HbaRule, NamePattern } from './rule.ts';

/** Why a rule did not match, for `explain` and logs. */
export type Mismatch = 'type' | 'protocol' | 'database' | 'user' | 'address';

function matchesType(rule: HbaRule, facts: ConnectionFacts): boolean {
  if (rule.type === 'local') return facts.transport === 'local';
  if (facts.transport !== 'tcp') return false;
  if (rule.type === 'hostssl') return facts.tls;
  if (rule.type === 'hostnossl') return !facts.tls;
  return true;
}

function matchesDatabase(patterns: readonly NamePattern[], facts: ConnectionFacts): boolean {
  return patterns.some((pattern) => {
    // Physical replication connections match only the `replication` keyword, as in PostgreSQL.
    if (facts.replication === 'physical') return pattern.kind === 'replication';
    if (pattern.kind === 'all') return true;
    return pattern.kind === 'name' && pattern.value === facts.database;
  });
}

function matchesUser(patterns: readonly NamePattern[], user: string): boolean {
  return patterns.some(
    (pattern) => pattern.kind === 'all' || (pattern.kind === 'name' && pattern.value === user),
  );
}

function matchesAddress(patterns: readonly AddressPattern[] | null, facts: ConnectionFacts): boolean {
  if (patterns === null) return true;
  const address = facts.address;
  if (address === null) return false;
  return patterns.some((pattern) => pattern.kind === 'all' || cidrContains(pattern.range, address));
}

/** The first reason a rule does not match the facts, or null if it matches. */
export function findMismatch(rule: HbaRule, facts: ConnectionFacts): Mismatch | null {
  if (!matchesType(rule, facts)) return 'type';
  if (rule.protocol !== 'any' && rule.protocol !== facts.protocol) return 'protocol';
  if (!matchesAddress(rule.addresses, facts)) return 'address';
  if (!matchesDatabase(rule.databases, facts)) return 'database';
  if (!matchesUser(rule.users, facts.user)) return 'user';
  return null;
}

/** Returns the first rule matching the facts, or null when none does. */
export function matchHbaRule(rules: readonly HbaRule[], facts: ConnectionFacts): HbaRule | null {
  for (const rule of rules) {
    if (findMismatch(rule, facts) === null) return rule;
  }
  return null;
}
