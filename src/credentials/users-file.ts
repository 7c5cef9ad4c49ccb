/**
 * The users file (`users.yaml`): locally defined users and their stored secrets. Only SCRAM-SHA-256
 * verifiers are stored, never passwords (`pgward passwd` writes them).
 */

import { isScalar } from 'yaml';
import { parseScramVerifier, type ScramVerifier } from '../auth/scram/verifier.ts';
import { type At, MapReader, readList, readString } from '../config/readers.ts';
import { YamlFile } from '../config/yaml-file.ts';

/** One locally defined user. */
export interface LocalUser {
  name: string;
  scram: ScramVerifier | undefined;
  /** Groups the user belongs to, for `+group` and `samerole` in HBA rules. */
  groups: ReadonlySet<string>;
}

const NO_GROUPS: ReadonlySet<string> = new Set();

/** The users known from the users file, by name. */
export interface UserDirectory {
  find(name: string): LocalUser | undefined;
}

/** A directory with no users (no users file configured). */
export const EMPTY_USER_DIRECTORY: UserDirectory = { find: () => undefined };

function readVerifier(at: At): ScramVerifier | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  const verifier = parseScramVerifier(text);
  if (!verifier) {
    at.file.error(
      at.node,
      at.path,
      'expected a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>); write one with "pgward passwd", never a password',
    );
  }
  return verifier ?? undefined;
}

function readGroupName(at: At): string | undefined {
  const group = readString(at);
  if (group === '' || group?.startsWith('+')) {
    at.file.error(at.node, at.path, 'a group name is a plain name (rules write +name to refer to it)');
    return undefined;
  }
  return group;
}

function readUser(at: At, name: string): LocalUser | undefined {
  const entry = MapReader.open(at, ['scram', 'groups']);
  if (!entry) return undefined;
  const groups = entry.optional('groups', (a) => readList(a, readGroupName, true));
  return {
    name,
    scram: entry.optional('scram', readVerifier),
    groups: groups === undefined ? NO_GROUPS : new Set(groups),
  };
}

function readUsers(yaml: YamlFile): UserDirectory {
  yaml.throwIfErrors();
  const top = MapReader.open({ file: yaml, node: yaml.root ?? undefined, path: '' }, ['users']);
  // `users:` with every entry commented out is an empty map, not an error.
  const byName = top?.optional('users', (at) =>
    isScalar(at.node) && at.node.value === null ? undefined : MapReader.open(at, 'any'),
  );
  const users = new Map<string, LocalUser>();
  for (const name of byName?.keys() ?? []) {
    const user = byName ? readUser(byName.at(name), name) : undefined;
    if (user) users.set(name, user);
  }
  yaml.throwIfErrors();
  return { find: (name) => users.get(name) };
}

/** Parses a users file from text; throws ConfigError listing every problem. */
export function parseUsersText(file: string, text: string): UserDirectory {
  return readUsers(new YamlFile(file, text));
}

/** Reads a users file from disk; throws ConfigError listing every problem. */
export function loadUsersFile(file: string): UserDirectory {
  return readUsers(YamlFile.read(file));
}
