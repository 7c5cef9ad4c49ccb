/**
 * Reads the `maps:` section of hba.yaml (PostgreSQL's pg_ident.conf) into IdentMap objects, with
 * file:line:column and a dotted path (`maps.corp[2].user`) for every problem; checks that a rule's
 * `map` option names a map of the file, and warns about maps no rule uses. Matching is
 * ident-map.ts's business.
 *
 * @see https://www.postgresql.org/docs/current/auth-username-maps.html
 */

import { type At, MapReader, readList, readString } from '../config/readers.ts';
import type { YamlFile } from '../config/yaml-file.ts';
import {
  BACKREFERENCE,
  hasCaptureGroup,
  type IdentMap,
  type IdentMapEntry,
  type IdentSystem,
  type IdentUser,
} from './ident-map.ts';
import { isQuoted } from './patterns.ts';

const ENTRY_KEYS = ['system', 'user', 'comment'] as const;

function readNonEmpty(at: At): string | undefined {
  const text = readString(at);
  if (text === '') at.file.error(at.node, at.path, 'empty name');
  return text === '' ? undefined : text;
}

/**
 * A leading `/` makes a regular expression whether the scalar is quoted or not, as in pg_ident.conf:
 * most expressions need YAML quotes (`{`, `[`, `,`, ` #`), and an identity starting with `/` can be
 * matched by `/^\/…$`.
 */
function readSystem(at: At): IdentSystem | undefined {
  const text = readNonEmpty(at);
  if (text === undefined) return undefined;
  if (!text.startsWith('/')) return { kind: 'name', value: text };
  const source = text.slice(1);
  if (source === '') {
    at.file.error(at.node, at.path, 'empty regular expression after "/" (it would match every name)');
    return undefined;
  }
  try {
    // The `u` flag: identities are Unicode text (a CN may hold any character), and `.` should take one.
    return { kind: 'regex', source, regex: new RegExp(source, 'u') };
  } catch (error) {
    at.file.error(at.node, at.path, `invalid regular expression /${source}: ${(error as Error).message}`);
    return undefined;
  }
}

/** Keywords (`all`, `+group`) count only in plain scalars, as in rules; `\1` is replaced in either. */
function readUser(at: At, system: IdentSystem | undefined): IdentUser | undefined {
  const text = readNonEmpty(at);
  if (text === undefined) return undefined;
  const quoted = isQuoted(at.node);
  if (!quoted && text.startsWith('+')) {
    if (text.length === 1) at.file.error(at.node, at.path, 'a group name must follow "+"');
    else if (text.includes(BACKREFERENCE)) {
      at.file.error(
        at.node,
        at.path,
        `${BACKREFERENCE} is not replaced in a +group name (PostgreSQL looks for a group named "${text.slice(1)}")`,
      );
    } else return { kind: 'group', group: text.slice(1) };
    return undefined;
  }
  if (!quoted && text.startsWith('/')) {
    at.file.error(
      at.node,
      at.path,
      `a map's user cannot be a regular expression; quote it ("${text}") for a user of that name`,
    );
    return undefined;
  }
  if (text.includes(BACKREFERENCE)) return readSubstitute(at, text, system);
  if (text === 'all' && !quoted) return { kind: 'all' };
  if (quoted && text === 'all') {
    at.file.warn(
      at.node,
      at.path,
      '"all" in quotes is the user named all, not the keyword; write all without quotes for the keyword',
    );
  } else if (quoted && text.startsWith('+') && text.length > 1) {
    at.file.warn(
      at.node,
      at.path,
      `"${text}" in quotes is the user named ${text}, not the group; write ${text} without quotes for the group`,
    );
  }
  return { kind: 'name', value: text };
}

function readSubstitute(at: At, template: string, system: IdentSystem | undefined): IdentUser | undefined {
  if (system === undefined) return undefined;
  if (system.kind === 'name') {
    at.file.error(
      at.node,
      at.path,
      `${BACKREFERENCE} needs a regular expression system ("/…") to take capture 1 from`,
    );
    return undefined;
  }
  if (!hasCaptureGroup(system.regex)) {
    // PostgreSQL's wording; it only finds out when a connection uses the entry.
    at.file.error(
      at.node,
      at.path,
      `regular expression "${system.source}" has no subexpressions as requested by backreference in "${template}"`,
    );
    return undefined;
  }
  return { kind: 'substitute', template };
}

function readEntry(at: At): IdentMapEntry | undefined {
  const entry = MapReader.open(at, ENTRY_KEYS);
  if (!entry) return undefined;
  const system = entry.required('system', readSystem);
  const user = entry.required('user', (a) => readUser(a, system));
  const comment = entry.optional('comment', readString);
  if (system === undefined || user === undefined) return undefined;
  const source = { file: at.file.file, ...at.file.positionOf(at.node) };
  return { system, user, source, comment };
}

function readMap(map: MapReader, name: string): IdentMap | undefined {
  const at = map.at(name);
  const keyNode = map.keyNode(name);
  if (name.trim() === '') at.file.error(keyNode, at.path, 'empty map name');
  const entries = readList(at, (item) => readEntry(item));
  if (entries?.length === 0) at.file.error(at.node, at.path, 'an empty list matches nothing');
  if (entries === undefined || entries.length === 0 || name.trim() === '') return undefined;
  return { name, source: { file: at.file.file, ...at.file.positionOf(keyNode) }, entries };
}

/** The `maps` section: every map that reads cleanly, and the names of all maps written (even broken ones). */
export interface IdentMapsSection {
  maps: ReadonlyMap<string, IdentMap>;
  names: ReadonlySet<string>;
}

/** Reads `maps` (an optional map of name → list of entries); problems go to the file. */
export function readIdentMaps(at: At | undefined): IdentMapsSection {
  const section = at === undefined ? undefined : MapReader.open(at, 'any');
  const maps = new Map<string, IdentMap>();
  const names = section?.keys() ?? [];
  for (const name of names) {
    const map = section && readMap(section, name);
    if (map) maps.set(name, map);
  }
  return { maps, names: new Set(names) };
}

/** Refuses a rule's `map` option that names no map of the file (the error sits on the option). */
export function checkMapReference(rule: MapReader, name: string, known: ReadonlySet<string>): void {
  if (known.has(name)) return;
  const listed = known.size > 0 ? `known: ${[...known].join(', ')}` : 'the file defines none';
  const at = rule.at('map');
  at.file.error(at.node, at.path, `no map "${name}" in maps (${listed})`);
}

/** Warns about each map no rule names: it has no effect. */
export function warnUnusedMaps(
  file: YamlFile,
  maps: ReadonlyMap<string, IdentMap>,
  used: ReadonlySet<string>,
): void {
  for (const map of maps.values()) {
    if (used.has(map.name)) continue;
    file.warnings.push({
      ...map.source,
      path: `maps.${map.name}`,
      message: `map "${map.name}" is not used: no rule names it in its map option`,
    });
  }
}
