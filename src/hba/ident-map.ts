/**
 * Ident maps (PostgreSQL's pg_ident.conf, written under `maps:` in hba.yaml): the types of a parsed
 * map and the pure matcher that says whether an authenticated identity (a certificate's CN or DN, a
 * token's principal) may log in as the PostgreSQL user it asked for. Reading maps from YAML is
 * ident-map-parse.ts's job; choosing the map and logging the outcome is the caller's.
 *
 * @see https://www.postgresql.org/docs/current/auth-username-maps.html
 */

import type { RuleSource } from './rule.ts';

/** The `system` side of an entry: the authenticated identity. */
export type IdentSystem =
  | { kind: 'name'; value: string }
  /** `/regex`: matched anywhere in the identity unless anchored; capture 1 feeds `\1`. */
  | { kind: 'regex'; source: string; regex: RegExp };

/** The `user` side of an entry: which PostgreSQL users the identity may log in as. */
export type IdentUser =
  | { kind: 'all' }
  /** `+group`: members of the group (users.yaml), and the user named like the group. */
  | { kind: 'group'; group: string }
  | { kind: 'name'; value: string }
  /**
   * A name containing `\1` (regex systems only): the first `\1` is replaced by capture 1 and the
   * result is compared as a plain name, never as a keyword or a group (PostgreSQL 16's rule).
   */
  | { kind: 'substitute'; template: string };

/** One entry of a map, in file order. */
export interface IdentMapEntry {
  system: IdentSystem;
  user: IdentUser;
  /** Where the entry starts, for the log line that says which entry matched. */
  source: RuleSource;
  comment: string | undefined;
}

/** A named map: its entries, tried in order. */
export interface IdentMap {
  name: string;
  /** Where the map's name is written. */
  source: RuleSource;
  entries: readonly IdentMapEntry[];
}

/**
 * The outcome of mapping: the entry that allowed the login (0-based index and source line), or none;
 * `error` when an entry could not be applied, which fails the login (PostgreSQL's error_p).
 */
export type IdentMapResult = { ok: true; entry: number; line: number } | { ok: false; error?: string };

/** The text `\1` stands for in a user name. */
export const BACKREFERENCE = '\\1';

/** True when the regex has at least one capture group, so that `\1` can be filled. */
export function hasCaptureGroup(regex: RegExp): boolean {
  // An empty alternative always matches the empty string; the match has one slot per group.
  const probe = new RegExp(`${regex.source}|`, regex.flags).exec('');
  return probe !== null && probe.length > 1;
}

/**
 * The user an entry names for this identity, null when its system side does not match, or an error
 * when `\1` asks for a capture that did not take part in the match (`(a)?b` on "b"): PostgreSQL logs
 * "has no subexpressions as requested by backreference" and fails the login.
 */
function expectedUser(entry: IdentMapEntry, systemName: string): IdentUser | null | { error: string } {
  const { system, user } = entry;
  if (system.kind === 'name') return system.value === systemName ? user : null;
  const match = system.regex.exec(systemName);
  if (match === null) return null;
  if (user.kind !== 'substitute') return user;
  const capture = match[1];
  if (capture === undefined)
    return {
      error: `regular expression "${system.source}" has no subexpressions as requested by backreference in "${user.template}" (line ${entry.source.line})`,
    };
  return { kind: 'name', value: user.template.replace(BACKREFERENCE, () => capture) };
}

/**
 * Checks an authenticated identity against a map with PostgreSQL's check_usermap semantics: entries
 * in order, the first whose system side matches `systemName` and whose user side admits
 * `requestedUser` wins. Names compare exactly (case-sensitive). `groupsOf` is only called for `+group`
 * entries; a user is a member of the group named like itself.
 */
export function mapIdentity(
  map: IdentMap,
  systemName: string,
  requestedUser: string,
  groupsOf: (user: string) => ReadonlySet<string>,
): IdentMapResult {
  for (const [index, entry] of map.entries.entries()) {
    const user = expectedUser(entry, systemName);
    if (user === null) continue;
    if ('error' in user) return { ok: false, error: user.error };
    const admitted =
      user.kind === 'all' ||
      (user.kind === 'group' && (requestedUser === user.group || groupsOf(requestedUser).has(user.group))) ||
      (user.kind === 'name' && user.value === requestedUser);
    if (admitted) return { ok: true, entry: index, line: entry.source.line };
  }
  return { ok: false };
}
