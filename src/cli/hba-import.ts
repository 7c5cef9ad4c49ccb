/**
 * `pgward hba import pg_hba.conf`: converts a PostgreSQL pg_hba.conf into hba.yaml on stdout, and
 * prints each problem on stderr as `file:line: error|warning: message`. Exits 1 when a line could not
 * be converted (or the file could not be read), 0 otherwise.
 */

import { readFileSync } from 'node:fs';
import { convertPgHba } from '../hba/pg-hba-import.ts';

/** Runs the import; returns the exit code. */
export function runHbaImport(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    process.stderr.write(`pgward: cannot read ${file}: ${(error as Error).message}\n`);
    return 1;
  }
  const { yaml, problems } = convertPgHba(file, text);
  process.stdout.write(yaml);
  for (const problem of problems) {
    process.stderr.write(`${file}:${problem.line}: ${problem.severity}: ${problem.message}\n`);
  }
  return problems.some((problem) => problem.severity === 'error') ? 1 : 0;
}
