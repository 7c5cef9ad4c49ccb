/**
 * External users (ClickHouse's token user directory, seed 001): a validator with `external_users`
 * accepts a valid token for a user that users.yaml does not define, when the token's principal is
 * that user. Such a user is no PostgreSQL role: pgward logs in upstream with the rule's upstream login
 * (typically a service account) and then runs `SET ROLE` to a role the token's claim grants.
 *
 *   external_users:
 *     roles: [analyst, engineer]          # the allow-list, in order of preference
 *     role_claim: groups                  # the claim naming the token's groups (default: groups)
 *     role_map: { corp-analysts: analyst, corp-eng: engineer }
 *
 * With `role_map`, only mapped claim values count; without it, a claim value counts when it names an
 * allowed role. Either way the role is one of `roles`, never a name an unchecked claim made up. When
 * the token grants several, the first in `roles` wins.
 */

import { type At, MapReader, readList, readString } from '../config/readers.ts';
import type { Claims } from './token.ts';

/** The configuration of a validator's external users. */
export interface ExternalUsers {
  roles: string[];
  roleClaim: string;
  /** Claim value → role; null: claim values name roles directly. */
  roleMap: Readonly<Record<string, string>> | null;
}

/** PostgreSQL's NAMEDATALEN - 1: longer role names would be truncated by the server. */
const MAX_ROLE_NAME = 63;

function readRoleName(at: At): string | undefined {
  const name = readString(at);
  if (name === undefined) return undefined;
  if (name === '' || Buffer.byteLength(name) > MAX_ROLE_NAME || name.includes('\0')) {
    at.file.error(at.node, at.path, `"${name}" is not a role name (1 to ${MAX_ROLE_NAME} bytes, no NUL)`);
    return undefined;
  }
  return name;
}

function readRoleMap(at: At, roles: readonly string[] | undefined): Record<string, string> | undefined {
  const map = MapReader.open(at, 'any');
  if (!map) return undefined;
  const out: Record<string, string> = Object.create(null);
  let ok = true;
  for (const key of map.keys()) {
    const value = map.at(key);
    const role = readRoleName(value);
    if (role !== undefined && roles && !roles.includes(role)) {
      at.file.error(value.node, value.path, `role "${role}" is not in external_users.roles`);
      ok = false;
    } else if (role === undefined) ok = false;
    else out[key] = role;
  }
  return ok ? out : undefined;
}

/** Reads `external_users`. */
export function readExternalUsers(at: At): ExternalUsers | undefined {
  const map = MapReader.open(at, ['roles', 'role_claim', 'role_map']);
  if (!map) return undefined;
  const roles = map.required('roles', (a) => readList(a, readRoleName, true));
  if (roles?.length === 0)
    map.file.error(map.at('roles').node, `${at.path}.roles`, 'no role: nobody could log in');
  const roleClaim = map.optional('role_claim', readString, 'groups');
  const roleMap = map.optional('role_map', (a) => readRoleMap(a, roles), null);
  if (!roles || roles.length === 0 || roleClaim === undefined || roleMap === undefined) return undefined;
  return { roles, roleClaim, roleMap };
}

/** The claim's values: one string, or the strings of a list. */
function claimValues(claims: Claims, name: string): string[] {
  const value = claims[name];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

/** The role a token grants under `external`, or null when it grants none of the allowed ones. */
export function grantedRole(claims: Claims, external: ExternalUsers): string | null {
  const granted = new Set<string>();
  for (const value of claimValues(claims, external.roleClaim)) {
    const map = external.roleMap;
    if (!map) granted.add(value);
    else if (Object.hasOwn(map, value)) granted.add(map[value] as string);
  }
  return external.roles.find((role) => granted.has(role)) ?? null;
}
