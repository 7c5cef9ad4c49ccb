/**
 * The HBA matcher: a pure function from connection facts to the first rule that matches, with
 * PostgreSQL's semantics (first match wins; the caller never falls through to later rules).
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { cidrContains } from './address.ts';
import type { AddressPattern, ConnectionFacts, HbaRule, NamePattern } from './rule.ts';

/** Which field of a rule did not match, for `explain` and logs. */
export type Mismatch = 'type' | 'protocol' | 'address' | 'database' | 'user';

function matchesType(rule: HbaRule, facts: ConnectionFacts): boolean {
  if (rule.type === 'local') return facts.transport === 'local';
  if (facts.transport !== 'tcp') return false;
  if (rule.type === 'hostssl') return facts.tls;
  if (rule.type === 'hostnossl') return !facts.tls;
  return true;
}

/** A user is a member of a group when the users file says so, or when it is the group itself. */
function isMember(facts: ConnectionFacts, group: string): boolean {
  return facts.user === group || facts.groups.has(group);
}

function matchesDatabase(pattern: NamePattern, facts: ConnectionFacts): boolean {
  // Physical replication connections name no database: only the `replication` keyword matches them.
  if (facts.replication === 'physical') return pattern.kind === 'replication';
  switch (pattern.kind) {
    case 'all':
      return true;
    case 'sameuser':
      return facts.database === facts.user;
    case 'samerole':
      return isMember(facts, facts.database);
    case 'regex':
      return pattern.regex.test(facts.database);
    case 'name':
      return pattern.value === facts.database;
    default:
      return false;
  }
}

function matchesUser(pattern: NamePattern, facts: ConnectionFacts): boolean {
  switch (pattern.kind) {
    case 'all':
      return true;
    case 'group':
      return isMember(facts, pattern.group);
    case 'regex':
      return pattern.regex.test(facts.user);
    case 'name':
      return pattern.value === facts.user;
    default:
      return false;
  }
}

function matchesAddress(pattern: AddressPattern, facts: ConnectionFacts): boolean {
  const address = facts.address;
  if (address === null) return false;
  switch (pattern.kind) {
    case 'all':
      return true;
    case 'cidr':
      return cidrContains(pattern.range, address);
    case 'samehost':
      return facts.serverInterfaces.some(
        (own) => own.address.kind() === address.kind() && own.address.toString() === address.toString(),
      );
    case 'samenet':
      return facts.serverInterfaces.some(
        (own) => own.address.kind() === address.kind() && address.match(own.address, own.prefix),
      );
  }
}

/** The first field in which a rule does not match the facts, or null if it matches. */
export function findMismatch(rule: HbaRule, facts: ConnectionFacts): Mismatch | null {
  if (!matchesType(rule, facts)) return 'type';
  if (rule.protocol !== 'any' && rule.protocol !== facts.protocol) return 'protocol';
  if (rule.addresses !== null && !rule.addresses.some((pattern) => matchesAddress(pattern, facts)))
    return 'address';
  if (!rule.databases.some((pattern) => matchesDatabase(pattern, facts))) return 'database';
  if (!rule.users.some((pattern) => matchesUser(pattern, facts))) return 'user';
  return null;
}

/** Returns the first rule matching the facts, or null when none does. */
export function matchHbaRule(rules: readonly HbaRule[], facts: ConnectionFacts): HbaRule | null {
  for (const rule of rules) {
    if (findMismatch(rule, facts) === null) return rule;
  }
  return null;
}

/** PostgreSQL's answer when no rule matches (FATAL 28000, its exact wording). */
export function noHbaEntryError(facts: ConnectionFacts): PgError {
  const host = facts.address?.toString() ?? '[local]';
  const encryption = facts.tls ? 'SSL encryption' : 'no encryption';
  const message =
    facts.replication === 'physical'
      ? `no pg_hba.conf entry for replication connection from host "${host}", user "${facts.user}", ${encryption}`
      : `no pg_hba.conf entry for host "${host}", user "${facts.user}", database "${facts.database}", ${encryption}`;
  return new PgError(SqlState.InvalidAuthorizationSpecification, message);
}
