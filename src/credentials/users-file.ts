/**
 * The users file (`users.yaml`): locally defined users, their stored secrets (SCRAM-SHA-256 verifiers
 * and, for the legacy `md5` method, md5 hashes; never passwords — `pgward passwd` writes them), their
 * groups and the upstream login they use.
 */

import { isScalar } from 'yaml';
import { parseScramVerifier, type ScramVerifier } from '../auth/scram/verifier.ts';
import {
  type At,
  MapReader,
  readList,
  readString,
  readUpstreamLoginName,
  readValidatorName,
} from '../config/readers.ts';
import { YamlFile } from '../config/yaml-file.ts';

/** One locally defined user. */
export interface LocalUser {
  name: string;
  scram: ScramVerifier | undefined;
  /** PostgreSQL's legacy `md5` + md5(password ‖ user), for the `md5` method only. */
  md5: string | undefined;
  /** Groups the user belongs to, for `+group` and `samerole` in HBA rules. */
  groups: ReadonlySet<string>;
  /** The named upstream login (pgward.yaml `upstream.logins`) this user's sessions use. */
  upstreamLogin: string | undefined;
  /** What a token must say to log in as this user (CrateDB's `CREATE USER … WITH (jwt = …)`). */
  jwt: UserTokenBinding | undefined;
}

/**
 * A user's token binding: the validator that checks its tokens, and claims that must match — CrateDB's
 * `iss`, `username` (the token's `username` claim) and `aud`. With a binding, the token's principal
 * need not equal the user name: the binding names whose token it is.
 */
export interface UserTokenBinding {
  validator: string;
  iss: string | undefined;
  username: string | undefined;
  aud: string | undefined;
}

/** What the users file is checked against. */
export interface UsersFileOptions {
  /** The names of pgward.yaml's `upstream.logins`; a user naming another is an error. */
  upstreamLogins?: ReadonlySet<string>;
  /** The names of pgward.yaml's `token_validators`; a user naming another is an error. */
  validators?: ReadonlySet<string>;
}

const MD5_HASH = /^md5[0-9a-f]{32}$/;

const NO_GROUPS: ReadonlySet<string> = new Set();

/** The users known from the users file, by name. */
export interface UserDirectory {
  find(name: string): LocalUser | undefined;
  /**
   * The user whose token binding names this `iss` and `username` (CrateDB's lookup of the user of an
   * HTTP Bearer token); only bindings that set both take part.
   */
  findByToken(iss: string, username: string): LocalUser | undefined;
}

/** A directory with no users (no users file configured). */
export const EMPTY_USER_DIRECTORY: UserDirectory = { find: () => undefined, findByToken: () => undefined };

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

function readMd5(at: At): string | undefined {
  const text = readString(at);
  if (text !== undefined && !MD5_HASH.test(text)) {
    at.file.error(
      at.node,
      at.path,
      'expected an md5 hash ("md5" and 32 hex digits, as pg_authid stores it), never a password',
    );
    return undefined;
  }
  return text;
}

function readTokenBinding(at: At, options: UsersFileOptions): UserTokenBinding | undefined {
  const map = MapReader.open(at, ['validator', 'iss', 'username', 'aud']);
  if (!map) return undefined;
  const validator = map.required('validator', (a) => readValidatorName(a, options.validators));
  if (validator === undefined) return undefined;
  return {
    validator,
    iss: map.optional('iss', readString),
    username: map.optional('username', readString),
    aud: map.optional('aud', readString),
  };
}

function readUser(at: At, name: string, options: UsersFileOptions): LocalUser | undefined {
  const entry = MapReader.open(at, ['scram', 'md5', 'groups', 'upstream_login', 'jwt']);
  if (!entry) return undefined;
  const groups = entry.optional('groups', (a) => readList(a, readGroupName, true));
  return {
    name,
    scram: entry.optional('scram', readVerifier),
    md5: entry.optional('md5', readMd5),
    groups: groups === undefined ? NO_GROUPS : new Set(groups),
    upstreamLogin: entry.optional('upstream_login', (a) => readUpstreamLoginName(a, options.upstreamLogins)),
    jwt: entry.optional('jwt', (a) => readTokenBinding(a, options)),
  };
}

function readUsers(yaml: YamlFile, options: UsersFileOptions): UserDirectory {
  yaml.throwIfErrors();
  const top = MapReader.open({ file: yaml, node: yaml.root ?? undefined, path: '' }, ['users']);
  // `users:` with every entry commented out is an empty map, not an error.
  const byName = top?.optional('users', (at) =>
    isScalar(at.node) && at.node.value === null ? undefined : MapReader.open(at, 'any'),
  );
  const users = new Map<string, LocalUser>();
  const byToken = new Map<string, LocalUser>();
  for (const name of byName?.keys() ?? []) {
    const at = byName?.at(name);
    const user = at ? readUser(at, name, options) : undefined;
    if (!user || !at) continue;
    users.set(name, user);
    const binding = user.jwt;
    if (binding?.iss === undefined || binding.username === undefined) continue;
    // CrateDB: the pair names one user, or a token could log in as either.
    const key = JSON.stringify([binding.iss, binding.username]);
    const other = byToken.get(key);
    if (other)
      yaml.error(at.node, `${at.path}.jwt`, `iss and username are already bound to user "${other.name}"`);
    else byToken.set(key, user);
  }
  yaml.throwIfErrors();
  return {
    find: (name) => users.get(name),
    findByToken: (iss, username) => byToken.get(JSON.stringify([iss, username])),
  };
}

/** Parses a users file from text; throws ConfigError listing every problem. */
export function parseUsersText(file: string, text: string, options: UsersFileOptions = {}): UserDirectory {
  return readUsers(new YamlFile(file, text), options);
}

/** Reads a users file from disk; throws ConfigError listing every problem. */
export function loadUsersFile(file: string, options: UsersFileOptions = {}): UserDirectory {
  return readUsers(YamlFile.read(file), options);
}
