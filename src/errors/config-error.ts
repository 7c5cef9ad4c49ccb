/**
 * ConfigError: a problem in a configuration file, located by file:line:column and a dotted path.
 */

/** Where in a file a problem is. Line and column are 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** One located problem in a configuration file. */
export interface ConfigProblem extends SourcePosition {
  /** Dotted path to the value, e.g. `rules[3].address`; empty for the document itself. */
  path: string;
  message: string;
}

/** Formats a problem the way compilers do: `file:line:column: path: message`. */
export function formatConfigProblem(problem: ConfigProblem): string {
  const where = `${problem.file}:${problem.line}:${problem.column}`;
  return problem.path ? `${where}: ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** One or more problems that make a configuration file unusable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatConfigProblem).join('\n'));
    this.problems = problems;
  }
}
