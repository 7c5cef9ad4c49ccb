/**
 * The edit of a users file's text that sets one user's secrets (`scram` and `md5`), for `pgward passwd`.
 * Splices only the lines of those keys into the text, so comments, key order and the other users stay
 * byte for byte. Reading the file is users-file.ts's job; this module does not check the rest of the file
 * (`pgward check` does), nor read or write the file itself.
 */

import { isDeepStrictEqual } from 'node:util';
import { Document, isMap, isScalar, type Node, Pair, parseDocument, Scalar, YAMLMap } from 'yaml';
import { MapReader } from '../config/readers.ts';
import { YamlFile } from '../config/yaml-file.ts';

/** The secrets `pgward passwd` stores for a user. */
export interface UserSecrets {
  /** The SCRAM-SHA-256 verifier in pg_authid's format. */
  scram: string;
  /** The md5 hash (`md5` + 32 hex digits); absent removes an existing one, which would be stale. */
  md5?: string | undefined;
}

/** The users file after the edit. */
export interface UserSecretEdit {
  text: string;
  /** True if the user had an md5 hash and `secrets.md5` was absent, so it was removed. */
  removedMd5: boolean;
}

/** One replacement of `text.slice(start, end)`; an insertion when start equals end. */
interface Splice {
  start: number;
  end: number;
  text: string;
}

/** What the edit functions share. */
interface EditContext {
  yaml: YamlFile;
  text: string;
  eol: string;
  user: string;
  secrets: UserSecrets;
  splices: Splice[];
  removedMd5: boolean;
}

const INDENT = 2;

function keyName(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function findPair(map: YAMLMap, key: string): Pair | undefined {
  return (map.items as Pair[]).find((pair) => keyName(pair) === key);
}

function isNull(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

function isEmptyFlowMap(node: unknown): boolean {
  return isMap(node) && node.flow === true && node.items.length === 0;
}

function startOfLine(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** The offset just past the line break ending the line that holds the character before `end`. */
function endOfLine(text: string, end: number): number {
  const newline = text.indexOf('\n', Math.max(end - 1, 0));
  return newline === -1 ? text.length : newline + 1;
}

function rangeOf(node: unknown): [number, number, number] {
  const range = (node as Node | undefined)?.range;
  if (!range) throw new Error('internal error: a parsed YAML node has no source range');
  return range;
}

/** Where a pair's text ends: after its value, or after its key when the value is empty. */
function pairEnd(pair: Pair): number {
  const keyEnd = rangeOf(pair.key)[1];
  return pair.value === null ? keyEnd : Math.max(keyEnd, rangeOf(pair.value)[1]);
}

function quoted(value: string): Scalar<string> {
  const scalar = new Scalar(value);
  scalar.type = Scalar.QUOTE_DOUBLE;
  return scalar;
}

/** Renders `key: value` as block YAML lines at an indent, each ending with `eol`. */
function renderPair(key: string, value: unknown, indent: number, eol: string): string {
  const map = new YAMLMap();
  map.items.push(new Pair(new Scalar(key), value));
  const doc = new Document();
  doc.contents = map;
  const lines = doc.toString({ lineWidth: 0, indent: INDENT, flowCollectionPadding: false }).split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => (line === '' ? '' : ' '.repeat(indent) + line) + eol).join('');
}

function renderSecrets(secrets: UserSecrets, indent: number, eol: string): string {
  const md5 = secrets.md5 === undefined ? '' : renderPair('md5', quoted(secrets.md5), indent, eol);
  return renderPair('scram', quoted(secrets.scram), indent, eol) + md5;
}

/** A new user entry's value, or a flow-style one turned into block style with the secrets set. */
function userMapWithSecrets(ctx: EditContext, existing: YAMLMap | undefined): YAMLMap {
  const map = existing ?? new YAMLMap();
  map.flow = false;
  const scram = findPair(map, 'scram');
  if (scram) scram.value = quoted(ctx.secrets.scram);
  else map.items.unshift(new Pair(new Scalar('scram'), quoted(ctx.secrets.scram)));
  const md5 = findPair(map, 'md5');
  if (md5 && ctx.secrets.md5 === undefined) {
    map.items.splice(map.items.indexOf(md5), 1);
    ctx.removedMd5 = true;
  } else if (md5 && ctx.secrets.md5 !== undefined) {
    md5.value = quoted(ctx.secrets.md5);
  } else if (ctx.secrets.md5 !== undefined) {
    const after = map.items.indexOf(findPair(map, 'scram') as Pair) + 1;
    map.items.splice(after, 0, new Pair(new Scalar('md5'), quoted(ctx.secrets.md5)));
  }
  return map;
}

/** Column (0-based) where a node starts. */
function columnOf(ctx: EditContext, node: unknown): number {
  return ctx.yaml.positionOf(node as Node).column - 1;
}

/**
 * Sets one secret key of a block map the user already has. A one-line scalar is replaced in place, so a
 * comment after it stays; anything else is replaced with its lines.
 */
function setSecretPair(ctx: EditContext, pair: Pair, value: string, indent: number): void {
  const node = pair.value;
  if (isScalar(node) && node.type !== Scalar.BLOCK_FOLDED && node.type !== Scalar.BLOCK_LITERAL) {
    const [start, end] = rangeOf(node);
    if (end > start && !ctx.text.slice(start, end).includes('\n')) {
      ctx.splices.push({ start, end, text: JSON.stringify(value) });
      return;
    }
  }
  ctx.splices.push({
    start: startOfLine(ctx.text, rangeOf(pair.key)[0]),
    end: endOfLine(ctx.text, pairEnd(pair)),
    text: renderPair(keyName(pair), quoted(value), indent, ctx.eol),
  });
}

/** Edits the secrets of a user whose entry is a block map, touching only those lines. */
function editBlockUserMap(ctx: EditContext, map: YAMLMap): void {
  const first = map.items[0] as Pair;
  const indent = columnOf(ctx, first.key);
  const firstLine = startOfLine(ctx.text, rangeOf(first.key)[0]);
  const scram = findPair(map, 'scram');
  const md5 = findPair(map, 'md5');
  if (scram) setSecretPair(ctx, scram, ctx.secrets.scram, indent);
  if (md5 && ctx.secrets.md5 !== undefined) setSecretPair(ctx, md5, ctx.secrets.md5, indent);
  if (md5 && ctx.secrets.md5 === undefined) {
    ctx.splices.push({
      start: startOfLine(ctx.text, rangeOf(md5.key)[0]),
      end: endOfLine(ctx.text, pairEnd(md5)),
      text: '',
    });
    ctx.removedMd5 = true;
  }
  const newMd5 = !md5 && ctx.secrets.md5 !== undefined ? ctx.secrets.md5 : undefined;
  if (!scram) {
    ctx.splices.push({
      start: firstLine,
      end: firstLine,
      text: renderSecrets({ scram: ctx.secrets.scram, md5: newMd5 }, indent, ctx.eol),
    });
  } else if (newMd5 !== undefined) {
    const at = endOfLine(ctx.text, pairEnd(scram));
    ctx.splices.push({ start: at, end: at, text: renderPair('md5', quoted(newMd5), indent, ctx.eol) });
  }
}

/**
 * Gives an empty value (`key:`, `key: ~`, `key: {}`) the block lines `body`: the empty value's text
 * goes, the lines go after the key's line.
 */
function fillEmptyValue(ctx: EditContext, pair: Pair, body: string): void {
  const keyEnd = rangeOf(pair.key)[1];
  const end = pairEnd(pair);
  ctx.splices.push({ start: keyEnd, end, text: ':' });
  const at = endOfLine(ctx.text, end);
  ctx.splices.push({ start: at, end: at, text: (at === ctx.text.length ? eolIfNeeded(ctx) : '') + body });
}

/** Replaces a pair's lines (not the comments above it) with a rendering of `value`. */
function replacePairLines(ctx: EditContext, pair: Pair, value: unknown): void {
  ctx.splices.push({
    start: startOfLine(ctx.text, rangeOf(pair.key)[0]),
    end: endOfLine(ctx.text, pairEnd(pair)),
    text: renderPair(keyName(pair), value, columnOf(ctx, pair.key), ctx.eol),
  });
}

function eolIfNeeded(ctx: EditContext): string {
  return ctx.text === '' || ctx.text.endsWith('\n') ? '' : ctx.eol;
}

function editUsersMap(ctx: EditContext, users: YAMLMap, usersPair: Pair): void {
  const pair = findPair(users, ctx.user);
  const userPath = `users.${ctx.user}`;
  if (users.flow) {
    // A flow-style users map is rewritten in block style: its text cannot take a block entry.
    const map = pair ? ctx.yaml.resolve(pair.value) : undefined;
    if (pair && !isNull(pair.value) && !isMap(map)) refuse(ctx, pair.value, userPath);
    const entry = userMapWithSecrets(ctx, isMap(map) ? map : undefined);
    if (pair) pair.value = entry;
    else users.items.push(new Pair(new Scalar(ctx.user), entry));
    users.flow = false;
    replacePairLines(ctx, usersPair, users);
    return;
  }
  if (!pair) {
    const last = users.items.at(-1) as Pair;
    const at = endOfLine(ctx.text, pairEnd(last));
    const entry = renderPair(ctx.user, userMapWithSecrets(ctx, undefined), columnOf(ctx, last.key), ctx.eol);
    ctx.splices.push({ start: at, end: at, text: (at === ctx.text.length ? eolIfNeeded(ctx) : '') + entry });
    return;
  }
  const value = pair.value;
  const indent = columnOf(ctx, pair.key) + INDENT;
  if (isNull(value) || isEmptyFlowMap(value))
    fillEmptyValue(ctx, pair, renderSecrets(ctx.secrets, indent, ctx.eol));
  else if (isMap(value) && value.flow) replacePairLines(ctx, pair, userMapWithSecrets(ctx, value));
  else if (isMap(value)) editBlockUserMap(ctx, value);
  else refuse(ctx, value, userPath);
}

/** Throws the ConfigError for a value that is not a map, an alias, or a flow map at the top. */
function refuse(ctx: EditContext, node: unknown, dottedPath: string): never {
  const at = { file: ctx.yaml, node: node as Node, path: dottedPath };
  if (MapReader.open(at, 'any') !== undefined) {
    const message =
      dottedPath === ''
        ? 'expected the block map "users:" at the top, not a flow map'
        : 'an alias cannot be edited; write the map out in full';
    ctx.yaml.error(at.node, dottedPath, message);
  }
  ctx.yaml.throwIfErrors();
  throw new Error('internal error: a refused value was not reported');
}

/** A whole `users:` map holding the new user, to insert at offset `at`. */
function newUsersBlock(ctx: EditContext, at: number): string {
  const entry = renderPair(ctx.user, userMapWithSecrets(ctx, undefined), INDENT, ctx.eol);
  return `${at === ctx.text.length ? eolIfNeeded(ctx) : ''}users:${ctx.eol}${entry}`;
}

function applySplices(text: string, splices: readonly Splice[]): string {
  // From the end backwards so earlier offsets stay valid; at one offset, a removal before an insertion.
  const ordered = [...splices].sort((a, b) => b.start - a.start || b.end - a.end);
  let out = text;
  for (const { start, end, text: replacement } of ordered)
    out = out.slice(0, start) + replacement + out.slice(end);
  return out;
}

/** The user's entry in a users file's plain data, compared by name as the users file reader does. */
function userEntryKey(users: Map<unknown, unknown>, user: string): unknown {
  for (const key of users.keys()) if (String(key) === user) return key;
  return user;
}

/**
 * Guards the text edit: the new file must hold the same data as the old one except this user's
 * secrets. A failure here is a bug in this module, reported instead of writing a damaged file.
 */
function assertOnlySecretsChanged(before: string, after: string, user: string, secrets: UserSecrets): void {
  const options = { mapAsMap: true, maxAliasCount: -1 } as const;
  const expected = (parseDocument(before).toJS(options) ?? new Map()) as Map<unknown, unknown>;
  const users = (expected.get('users') ?? new Map()) as Map<unknown, unknown>;
  expected.set('users', users);
  const key = userEntryKey(users, user);
  const entry = (users.get(key) ?? new Map()) as Map<unknown, unknown>;
  users.set(key, entry);
  entry.set('scram', secrets.scram);
  if (secrets.md5 === undefined) entry.delete('md5');
  else entry.set('md5', secrets.md5);
  const parsed = parseDocument(after);
  if (parsed.errors.length > 0 || !isDeepStrictEqual(parsed.toJS(options), expected)) {
    throw new Error(`internal error: the edit of ${JSON.stringify(user)} would change more than its secrets`);
  }
}

/**
 * Sets a user's secrets in the text of a users file and returns the new text. Only the lines of the
 * user's `scram` and `md5` keys change (a new user is added after the last one; flow-style maps on the
 * way are rewritten in block style). Throws ConfigError, located by line and column, if the text is not
 * YAML or `users` or the user's entry is not a map.
 */
export function setUserSecret(
  text: string,
  file: string,
  user: string,
  secrets: UserSecrets,
): UserSecretEdit {
  const yaml = new YamlFile(file, text);
  yaml.throwIfErrors();
  const ctx: EditContext = {
    yaml,
    text,
    eol: text.includes('\r\n') ? '\r\n' : '\n',
    user,
    secrets,
    splices: [],
    removedMd5: false,
  };
  const root = yaml.root;
  if (isNull(root)) {
    ctx.splices.push({ start: text.length, end: text.length, text: newUsersBlock(ctx, text.length) });
  } else if (!isMap(root) || root.flow) {
    refuse(ctx, root, '');
  } else {
    const usersPair = findPair(root, 'users');
    const users = usersPair ? yaml.resolve(usersPair.value) : undefined;
    if (!usersPair) {
      // After the map rather than at the end of the text, which may hold a `...` document end.
      const at = endOfLine(text, rangeOf(root)[1]);
      ctx.splices.push({ start: at, end: at, text: newUsersBlock(ctx, at) });
    } else if (isNull(usersPair.value) || isEmptyFlowMap(usersPair.value)) {
      const entry = userMapWithSecrets(ctx, undefined);
      fillEmptyValue(ctx, usersPair, renderPair(user, entry, columnOf(ctx, usersPair.key) + INDENT, ctx.eol));
    } else if (isMap(users) && users === usersPair.value) {
      editUsersMap(ctx, users, usersPair);
    } else {
      refuse(ctx, usersPair.value, 'users');
    }
  }
  const result = applySplices(text, ctx.splices);
  assertOnlySecretsChanged(text, result, user, secrets);
  return { text: result, removedMd5: ctx.removedMd5 };
}
