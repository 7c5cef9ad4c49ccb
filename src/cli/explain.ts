/**
 * `pgward explain`: which rule a connection would match, and why each earlier rule did not. Exits 0
 * when a rule matches, 1 when none does (the client would get FATAL 28000).
 */

import { normalizeClientAddress } from '../hba/address.ts';
import { explainMatch } from '../hba/explain.ts';
import { noHbaEntryError } from '../hba/match.ts';
import type { ConnectionFacts, HbaRule } from '../hba/rule.ts';
import { loadConfigTarget, type TargetFlags } from './config-target.ts';

/** The connection to explain, as given on the command line. */
export interface ExplainFlags extends TargetFlags {
  user: string;
  db?: string | undefined;
  /** An IP address, or `local` for a Unix-socket client. */
  addr: string;
  tls: boolean;
  protocol: 'pg' | 'http';
  replication?: 'physical' | 'logical' | undefined;
}

function describeConnection(facts: ConnectionFacts): string {
  const from =
    facts.transport === 'local'
      ? 'over a Unix socket'
      : `from ${facts.address?.toString()} over TCP/IP ${facts.tls ? 'with' : 'without'} TLS`;
  const replication = facts.replication ? `, ${facts.replication} replication` : '';
  return `user "${facts.user}", database "${facts.database}", ${from}, protocol ${facts.protocol}${replication}`;
}

function describeRule(rule: HbaRule): string {
  return `${rule.index + 1}. "${rule.name}" (${rule.source.file}:${rule.source.line})`;
}

/** Parses --addr; throws with a message for anything else. */
function readAddress(text: string): Pick<ConnectionFacts, 'transport' | 'address'> {
  if (text === 'local') return { transport: 'local', address: null };
  const address = normalizeClientAddress(text);
  if (!address) throw new Error(`--addr must be an IP address or "local", got "${text}"`);
  return { transport: 'tcp', address };
}

/** Runs explain; returns the exit code. */
export function runExplain(flags: ExplainFlags): number {
  const target = loadConfigTarget(flags);
  const where = readAddress(flags.addr);
  const facts: ConnectionFacts = {
    ...where,
    tls: flags.tls && where.transport === 'tcp',
    protocol: flags.protocol,
    user: flags.user,
    database: flags.db ?? flags.user,
    replication: flags.replication ?? false,
    groups: target.users.find(flags.user)?.groups ?? new Set(),
    serverInterfaces: target.serverInterfaces,
  };
  const { skipped, matched } = explainMatch(target.hba.rules, facts);
  const lines = [`connection: ${describeConnection(facts)}`, `rules: ${target.hba.file}`];
  for (const { rule, field, reason } of skipped)
    lines.push(`  ${describeRule(rule)}: no (${field}: ${reason})`);
  if (matched) {
    lines.push(`→ ${describeRule(matched)} matches: method ${matched.method}`);
  } else {
    lines.push(`→ no rule matches: the client gets FATAL 28000 ${noHbaEntryError(facts).message}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return matched ? 0 : 1;
}
