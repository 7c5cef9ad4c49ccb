/**
 * One pg_hba.conf record while `pgward hba import` converts it: its fields, taken in order, and the
 * problems found on its line. Knows nothing of what the fields mean.
 */

import type { Field, Token } from './pg-hba-reader.ts';

/**
 * Something the import found on one line of pg_hba.conf. An error means the line was left out of the
 * YAML; a warning means it was converted with a change worth knowing about (or, for `hostgssenc`,
 * left out because it could never match).
 */
export interface ImportProblem {
  /** 1-based line of pg_hba.conf (the first line of a record continued with `\`). */
  line: number;
  message: string;
  severity: 'error' | 'warning';
}

/** The problems of one record. */
export class LineReport {
  readonly line: number;
  readonly problems: ImportProblem[] = [];

  constructor(line: number) {
    this.line = line;
  }

  /** Records an error (the record will be left out); returns undefined for `return report.error(…)`. */
  error(message: string): undefined {
    this.problems.push({ line: this.line, message, severity: 'error' });
    return undefined;
  }

  warn(message: string): void {
    this.problems.push({ line: this.line, message, severity: 'warning' });
  }

  get hasErrors(): boolean {
    return this.problems.some((problem) => problem.severity === 'error');
  }

  /** Why a left-out record was left out: its errors, else its warnings. */
  get skipReasons(): string[] {
    const errors = this.problems.filter((problem) => problem.severity === 'error');
    return (errors.length > 0 ? errors : this.problems).map((problem) => problem.message);
  }
}

/** A record's fields, taken in order. */
export class FieldQueue {
  readonly #fields: readonly Field[];
  #next = 0;

  constructor(fields: readonly Field[]) {
    this.#fields = fields;
  }

  take(): Field | undefined {
    const field = this.#fields[this.#next];
    this.#next += 1;
    return field;
  }

  rest(): readonly Field[] {
    return this.#fields.slice(this.#next);
  }
}

/** A field the record cannot do without; an error names what is missing. */
export function requireField(
  field: Field | undefined,
  missing: string,
  report: LineReport,
): Field | undefined {
  return field ?? report.error(`end-of-line before ${missing}`);
}

/** The one token of a field that takes a single value. */
export function takeSingleToken(field: Field, what: string, report: LineReport): Token | undefined {
  const [token] = field;
  if (field.length > 1 || token === undefined) return report.error(`multiple values specified for ${what}`);
  return token;
}

/** The one token of a field the record cannot do without. */
export function requireSingleToken(
  field: Field | undefined,
  missing: string,
  what: string,
  report: LineReport,
): Token | undefined {
  const present = requireField(field, missing, report);
  return present && takeSingleToken(present, what, report);
}
