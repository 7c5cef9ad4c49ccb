/**
 * Typed readers over YAML nodes. Each reader checks one value's shape, records a located problem on
 * the YamlFile when it is wrong, and returns undefined then, so one pass reports every problem.
 * Maps reject keys they do not know.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, type Node, type Pair } from 'yaml';
import type { YamlFile } from './yaml-file.ts';

/** Joins a dotted path and a key or index. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/** A value node with its path, handed to item readers. */
export interface At {
  file: YamlFile;
  node: Node | undefined;
  path: string;
}

function describe(node: Node | undefined): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node))
    return node.value === null ? 'null' : `${typeof node.value} ${JSON.stringify(node.value)}`;
  return 'nothing';
}

/**
 * Reads a string. A plain scalar YAML reads as a number (`007`, `1e3`, `1.10`) is taken as written,
 * since names may be numeric: `007` is the name "007", not "7".
 */
export function readString(at: At): string | undefined {
  if (isScalar(at.node) && typeof at.node.value === 'string') return at.node.value;
  if (isScalar(at.node) && typeof at.node.value === 'number') {
    return typeof at.node.source === 'string' ? at.node.source : String(at.node.value);
  }
  at.file.error(at.node, at.path, `expected a string, got ${describe(at.node)}`);
  return undefined;
}

/** Reads a boolean. */
export function readBoolean(at: At): boolean | undefined {
  if (isScalar(at.node) && typeof at.node.value === 'boolean') return at.node.value;
  at.file.error(at.node, at.path, `expected true or false, got ${describe(at.node)}`);
  return undefined;
}

/** Reads an integer within bounds. */
export function readInteger(at: At, min: number, max: number): number | undefined {
  if (isScalar(at.node) && typeof at.node.value === 'number' && Number.isInteger(at.node.value)) {
    if (at.node.value >= min && at.node.value <= max) return at.node.value;
    at.file.error(at.node, at.path, `must be between ${min} and ${max}, got ${at.node.value}`);
    return undefined;
  }
  at.file.error(at.node, at.path, `expected an integer, got ${describe(at.node)}`);
  return undefined;
}

/** Reads one of a fixed set of words. */
export function readChoice<T extends string>(at: At, choices: readonly T[]): T | undefined {
  const value = readString(at);
  if (value === undefined) return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  at.file.error(at.node, at.path, `must be one of ${choices.join(', ')}; got "${value}"`);
  return undefined;
}

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/**
 * Reads a secret: a literal, `${ENV_VAR}`, or `file:path` (relative to the config file; one trailing
 * newline removed).
 */
export function readSecret(at: At): string | undefined {
  const value = readString(at);
  if (value === undefined) return undefined;
  const env = ENV_REFERENCE.exec(value);
  if (env?.[1] !== undefined) {
    const resolved = process.env[env[1]];
    if (resolved === undefined) at.file.error(at.node, at.path, `environment variable ${env[1]} is not set`);
    return resolved;
  }
  if (value.startsWith('file:')) {
    const target = path.resolve(at.file.dir, value.slice('file:'.length));
    try {
      return readFileSync(target, 'utf8').replace(/\r?\n$/, '');
    } catch (cause) {
      at.file.error(at.node, at.path, `cannot read secret file ${target}: ${(cause as Error).message}`);
      return undefined;
    }
  }
  return value;
}

/** Reads a path, resolved against the config file's folder. */
export function readPath(at: At): string | undefined {
  const value = readString(at);
  return value === undefined ? undefined : path.resolve(at.file.dir, value);
}

/** Reads a list; a single value is accepted as a one-item list when `allowSingle` is set. */
export function readList<T>(
  at: At,
  item: (at: At, index: number) => T | undefined,
  allowSingle = false,
): T[] | undefined {
  const node = at.file.resolve(at.node);
  if (!isSeq(node)) {
    if (allowSingle && isScalar(node)) {
      const one = item({ ...at, node }, 0);
      return one === undefined ? undefined : [one];
    }
    at.file.error(node, at.path, `expected a list, got ${describe(node)}`);
    return undefined;
  }
  const out: T[] = [];
  let ok = true;
  node.items.forEach((child, index) => {
    const value = item(
      { file: at.file, node: at.file.resolve(child), path: childPath(at.path, index) },
      index,
    );
    if (value === undefined) ok = false;
    else out.push(value);
  });
  return ok ? out : undefined;
}

/** A YAML map being read key by key; unknown keys are errors, reported by `finish()`. */
export class MapReader {
  readonly file: YamlFile;
  readonly path: string;
  readonly node: Node;
  readonly #pairs = new Map<string, Pair>();
  readonly #allowed: ReadonlySet<string> | 'any';

  private constructor(file: YamlFile, node: Node, dottedPath: string, allowed: readonly string[] | 'any') {
    this.file = file;
    this.node = node;
    this.path = dottedPath;
    this.#allowed = allowed === 'any' ? 'any' : new Set(allowed);
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        this.#pairs.set(key, pair as Pair);
      }
    }
  }

  /**
   * Opens a map at `at`, or records an error and returns undefined if it is not a map. `allowed`
   * lists the keys it may have, or is 'any' for maps keyed by names (users, validators).
   */
  static open(at: At, allowed: readonly string[] | 'any'): MapReader | undefined {
    const node = at.file.resolve(at.node);
    if (!isMap(node)) {
      at.file.error(node, at.path, `expected a map, got ${describe(node)}`);
      return undefined;
    }
    const reader = new MapReader(at.file, node, at.path, allowed);
    reader.#checkKeys();
    return reader;
  }

  #checkKeys(): void {
    const allowed = this.#allowed;
    if (allowed === 'any') return;
    for (const [key, pair] of this.#pairs) {
      if (!allowed.has(key)) {
        const known = [...allowed].join(', ');
        this.file.error(
          pair.key as Node,
          childPath(this.path, key),
          `unknown key "${key}" (known keys: ${known})`,
        );
      }
    }
  }

  /** Keys present in the map, in file order. */
  keys(): string[] {
    return [...this.#pairs.keys()];
  }

  /** True if the key is present (even with a null value). */
  has(key: string): boolean {
    return this.#pairs.has(key);
  }

  /** The position handle for a key's value (node undefined when absent). */
  at(key: string): At {
    const pair = this.#pairs.get(key);
    return {
      file: this.file,
      node: this.file.resolve(pair?.value ?? undefined),
      path: childPath(this.path, key),
    };
  }

  /** The key node itself, for messages about the key. */
  keyNode(key: string): Node | undefined {
    return this.#pairs.get(key)?.key as Node | undefined;
  }

  /** Reads an optional value with `read`; absent keys give `fallback`. */
  optional<T>(key: string, read: (at: At) => T | undefined, fallback: T): T;
  optional<T>(key: string, read: (at: At) => T | undefined): T | undefined;
  optional<T>(key: string, read: (at: At) => T | undefined, fallback?: T): T | undefined {
    if (!this.#pairs.has(key)) return fallback;
    return read(this.at(key));
  }

  /** Reads a required value; absence is an error located at the map. */
  required<T>(key: string, read: (at: At) => T | undefined): T | undefined {
    if (!this.#pairs.has(key)) {
      this.file.error(this.node, this.path, `missing required key "${key}"`);
      return undefined;
    }
    return read(this.at(key));
  }
}

/**
 * The name of one of pgward.yaml's `upstream.logins` (HBA rules' and users' `upstream_login`); when
 * the names are known, any other is an error at its position.
 */
export function readUpstreamLoginName(at: At, known: ReadonlySet<string> | undefined): string | undefined {
  const name = readString(at);
  if (name !== undefined && known && !known.has(name)) {
    at.file.error(at.node, at.path, `no upstream login "${name}" in pgward.yaml (upstream.logins)`);
    return undefined;
  }
  return name;
}

/**
 * The name of one of pgward.yaml's `token_validators` (HBA rules' `validator`, users' `jwt.validator`);
 * when the names are known, any other is an error at its position.
 */
export function readValidatorName(at: At, known: ReadonlySet<string> | undefined): string | undefined {
  const name = readString(at);
  if (name !== undefined && known && !known.has(name)) {
    const listed = known.size > 0 ? ` (defined: ${[...known].join(', ')})` : '';
    at.file.error(
      at.node,
      at.path,
      `no token validator "${name}" in pgward.yaml (token_validators)${listed}`,
    );
    return undefined;
  }
  return name;
}

/** Reads an http or https URL. */
export function readHttpUrl(at: At): string | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if (URL.canParse(text) && /^https?:$/.test(new URL(text).protocol)) return text;
  at.file.error(at.node, at.path, `expected an http(s) URL, got "${text}"`);
  return undefined;
}
