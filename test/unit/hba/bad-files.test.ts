/**
 * The bad-file and warning tables: `fixtures/hba/bad-files.yaml` lists hba.yaml snippets the parser
 * must refuse with exactly the problems given (as `LINE:COLUMN: path: message`, within the snippet);
 * `fixtures/hba/warning-files.yaml` lists snippets it must accept with exactly the warnings given
 * (HbaTable.warnings). A case with `todo:` is a known bug whose list says what is right.
 */

import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { ConfigError, type ConfigProblem } from '../../../src/errors/config-error.ts';
import { parseHbaText } from '../../../src/hba/parse.ts';

const MIN_BAD_CASES = 25;

/** One case of a table. */
interface TableCase {
  name: string;
  yaml: string;
  /** The problems (bad-files) or warnings (warning-files) expected, in order. */
  expected: string[];
  todo: string | undefined;
}

/** A table file: its well-formed cases, and what is wrong with the others. */
interface Table {
  file: string;
  cases: TableCase[];
  malformed: string[];
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function readCase(entry: unknown, key: 'errors' | 'warnings'): TableCase | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const { name, yaml, todo, [key]: expected, ...rest } = entry as Record<string, unknown>;
  if (typeof name !== 'string' || typeof yaml !== 'string' || !isStringList(expected)) return undefined;
  if ((todo !== undefined && typeof todo !== 'string') || Object.keys(rest).length > 0) return undefined;
  return { name, yaml, expected, todo };
}

/** Reads a YAML list of `{ name, yaml, <key>: [strings], todo? }`. */
function readTable(file: string, key: 'errors' | 'warnings'): Table {
  let data: unknown;
  try {
    data = parse(readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8'));
  } catch (error) {
    return { file, cases: [], malformed: [`${file}: ${(error as Error).message}`] };
  }
  if (!Array.isArray(data)) return { file, cases: [], malformed: [`${file}: expected a list of cases`] };
  const cases: TableCase[] = [];
  const malformed: string[] = [];
  data.forEach((entry: unknown, index) => {
    const read = readCase(entry, key);
    if (read) cases.push(read);
    else malformed.push(`${file}: case ${index + 1} is not { name, yaml, ${key}: [strings], todo? }`);
  });
  return { file, cases, malformed };
}

/** A problem as the table writes it: its place in the snippet, its path (if any) and its message. */
function located(problem: ConfigProblem): string {
  const where = `${problem.line}:${problem.column}`;
  return problem.path ? `${where}: ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** The problems parsing a snippet reports; none if it parses. */
function problemsOf(snippet: string): string[] {
  try {
    parseHbaText('hba.yaml', snippet);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map(located);
  }
}

/** Fails on malformed cases and on names used twice, so a case is never silently dropped. */
function checkShape(t: Test, table: Table): void {
  for (const problem of table.malformed) t.fail(problem);
  const names = table.cases.map((c) => c.name);
  t.same(
    names.filter((name, index) => names.indexOf(name) !== index),
    [],
    `${table.file}: every case has its own name`,
  );
}

const badFiles = readTable('fixtures/hba/bad-files.yaml', 'errors');
const warningFiles = readTable('fixtures/hba/warning-files.yaml', 'warnings');

t.test('each bad file is refused with exactly the problems its case lists', async (t) => {
  checkShape(t, badFiles);
  for (const c of badFiles.cases) {
    if (c.expected.length === 0) t.fail(`${badFiles.file}: "${c.name}" lists no errors`);
    t.same(problemsOf(c.yaml), c.expected, c.name, c.todo ? { todo: c.todo } : {});
  }
});

t.test(`the bad-file table keeps at least ${MIN_BAD_CASES} cases`, async (t) => {
  t.ok(badFiles.cases.length >= MIN_BAD_CASES, `${badFiles.cases.length} cases in ${badFiles.file}`);
});

t.test('each warning file loads with exactly the warnings its case lists', async (t) => {
  checkShape(t, warningFiles);
  t.ok(warningFiles.cases.length > 0, `${warningFiles.cases.length} cases in ${warningFiles.file}`);
  for (const c of warningFiles.cases) {
    t.same(parseHbaText('hba.yaml', c.yaml).warnings, c.expected, c.name, c.todo ? { todo: c.todo } : {});
  }
});
