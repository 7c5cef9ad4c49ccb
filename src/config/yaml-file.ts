/**
 * YamlFile: a parsed YAML configuration file that knows where every node came from, and collects
 * located problems (errors and warnings) while the schema readers walk it.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isAlias, isNode, LineCounter, type Node, parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors/config-error.ts';

/** A YAML file being read, with the problems found so far. */
export class YamlFile {
  readonly file: string;
  readonly dir: string;
  readonly root: Node | null;
  readonly errors: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];
  readonly #lineCounter: LineCounter;
  readonly #doc: ReturnType<typeof parseDocument>;

  constructor(file: string, text: string) {
    this.file = file;
    this.dir = path.dirname(path.resolve(file));
    this.#lineCounter = new LineCounter();
    this.#doc = parseDocument(text, {
      lineCounter: this.#lineCounter,
      uniqueKeys: true,
      prettyErrors: false,
    });
    for (const error of this.#doc.errors) {
      // linePos is only filled in with prettyErrors; the offset always is.
      const at = this.#lineCounter.linePos(error.pos[0]);
      this.errors.push({
        file,
        line: at.line,
        column: at.col,
        path: '',
        message: error.message.split('\n')[0] ?? '',
      });
    }
    this.root = this.#doc.errors.length === 0 ? (this.#doc.contents as Node | null) : null;
  }

  /** Reads and parses a file from disk; an unreadable file is a ConfigError. */
  static read(file: string): YamlFile {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `cannot read file: ${reason}` }]);
    }
    return new YamlFile(file, text);
  }

  /** Follows an alias to the node it names. */
  resolve(node: unknown): Node | undefined {
    if (isAlias(node)) return node.resolve(this.#doc) ?? undefined;
    return isNode(node) ? node : undefined;
  }

  /** 1-based line and column of a node (the document start when unknown). */
  positionOf(node: Node | undefined): { line: number; column: number } {
    const offset = node?.range?.[0];
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = this.#lineCounter.linePos(offset);
    return { line: Math.max(line, 1), column: col };
  }

  /** Records an error at a node. */
  error(node: Node | undefined, dottedPath: string, message: string): void {
    this.errors.push({ file: this.file, ...this.positionOf(node), path: dottedPath, message });
  }

  /** Records a warning at a node (the file is still usable). */
  warn(node: Node | undefined, dottedPath: string, message: string): void {
    this.warnings.push({ file: this.file, ...this.positionOf(node), path: dottedPath, message });
  }

  /** Throws a ConfigError holding every error found, if any. */
  throwIfErrors(): void {
    if (this.errors.length > 0) throw new ConfigError(this.errors);
  }
}
