/**
 * Shadowed rules: a rule that an earlier rule matches whenever it would match can never decide a
 * connection (first match wins). Conservative: it reports only what it can prove from the patterns
 * alone, so a rule it does not report may still be unreachable, never the reverse.
 */

import type { AddressPattern, ConnectionType, HbaRule, NamePattern } from './rule.ts';

function typeCovers(earlier: ConnectionType, later: ConnectionType): boolean {
  return earlier === later || (earlier === 'host' && (later === 'hostssl' || later === 'hostnossl'));
}

function samePattern(a: NamePattern, b: NamePattern): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'name' && b.kind === 'name') return a.value === b.value;
  if (a.kind === 'group' && b.kind === 'group') return a.group === b.group;
  if (a.kind === 'regex' && b.kind === 'regex') return a.source === b.source;
  return true;
}

/** True if some pattern in `earlier` matches every name `pattern` matches. */
function namesCover(earlier: readonly NamePattern[], pattern: NamePattern): boolean {
  return earlier.some(
    // `all` takes everything except physical replication, which only `replication` matches.
    (candidate) =>
      (candidate.kind === 'all' && pattern.kind !== 'replication') || samePattern(candidate, pattern),
  );
}

function coversEveryAddress(patterns: readonly AddressPattern[]): boolean {
  const everyV4 = patterns.some(
    (p) => p.kind === 'cidr' && p.range.prefix === 0 && p.range.network.kind() === 'ipv4',
  );
  const everyV6 = patterns.some(
    (p) => p.kind === 'cidr' && p.range.prefix === 0 && p.range.network.kind() === 'ipv6',
  );
  return patterns.some((p) => p.kind === 'all') || (everyV4 && everyV6);
}

function addressCovers(earlier: readonly AddressPattern[], pattern: AddressPattern): boolean {
  if (coversEveryAddress(earlier)) return true;
  return earlier.some((candidate) => {
    if (candidate.kind === 'samenet') return pattern.kind === 'samenet' || pattern.kind === 'samehost';
    if (candidate.kind !== 'cidr' || pattern.kind !== 'cidr') return candidate.kind === pattern.kind;
    const wide = candidate.range;
    const narrow = pattern.range;
    return (
      wide.network.kind() === narrow.network.kind() &&
      wide.prefix <= narrow.prefix &&
      narrow.network.match(wide.network, wide.prefix)
    );
  });
}

/** True if `earlier` matches every connection `later` matches. */
export function ruleCovers(earlier: HbaRule, later: HbaRule): boolean {
  if (!typeCovers(earlier.type, later.type)) return false;
  if (earlier.protocol !== 'any' && earlier.protocol !== later.protocol) return false;
  if (later.addresses !== null && earlier.addresses !== null) {
    if (!later.addresses.every((pattern) => addressCovers(earlier.addresses ?? [], pattern))) return false;
  }
  return (
    later.databases.every((pattern) => namesCover(earlier.databases, pattern)) &&
    later.users.every((pattern) => namesCover(earlier.users, pattern))
  );
}

/** The first rule before `rule` that shadows it, if any. */
export function findShadowingRule(rules: readonly HbaRule[], rule: HbaRule): HbaRule | undefined {
  return rules.slice(0, rule.index).find((earlier) => ruleCovers(earlier, rule));
}
