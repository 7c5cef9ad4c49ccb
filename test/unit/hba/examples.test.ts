import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { type HbaTable, loadHbaFile } from '../../../src/hba/parse.ts';
import { HBA_METHODS, type HbaMethod } from '../../../src/hba/rule.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const examplesDir = path.join(root, 'hba', 'examples');

/** Every shipped rule file: each example, and the default rules. */
const files = [
  ...readdirSync(examplesDir)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => path.join(examplesDir, name)),
  path.join(root, 'hba', 'default.yaml'),
];

/** The methods of the seed documents (StarRocks, ClickHouse, Vertica, CrateDB) and PostgreSQL's own. */
const SEED_METHODS = [
  'trust',
  'password',
  'scram-sha-256',
  'md5',
  'cert',
  'jwt',
  'oauth',
  'http',
  'browser',
] as const satisfies readonly HbaMethod[];

/** `reject` proves nothing and needs no file of its own; the examples use it inside other tables. */
const METHODS_WITHOUT_OWN_EXAMPLE: readonly HbaMethod[] = ['reject'];

/** Parses a file with every method enabled (the default); undefined if it does not parse. */
function tryLoad(file: string): HbaTable | undefined {
  try {
    return loadHbaFile(file);
  } catch {
    return undefined;
  }
}

/** The rule entries as written, to see which carry a `name` key (parsed rules always have a name). */
function writtenRules(file: string): unknown[] {
  const doc: unknown = parse(readFileSync(file, 'utf8'));
  const rules = (doc as { rules?: unknown } | null)?.rules;
  return Array.isArray(rules) ? rules : [];
}

function hasName(entry: unknown): boolean {
  const name = (entry as { name?: unknown } | null)?.name;
  return typeof name === 'string' && name.trim() !== '';
}

const tables = new Map(files.map((file) => [file, tryLoad(file)]));
const example = (name: string) => tables.get(path.join(examplesDir, name));

t.test('there are example files to check', async (t) => {
  t.ok(files.length > SEED_METHODS.length, `${files.length} files found`);
});

for (const file of files) {
  const shown = path.relative(root, file);
  t.test(`${shown} parses with every method enabled, without warnings, and names every rule`, async (t) => {
    const table = loadHbaFile(file);
    t.same(table.warnings, [], 'no shadowed rules and no quoted keywords');
    t.ok(table.rules.length > 0, 'has rules');
    const written = writtenRules(file);
    t.equal(written.length, table.rules.length, 'every entry became a rule');
    t.same(
      table.rules.filter((_, index) => !hasName(written[index])).map((rule) => rule.name),
      [],
      'every rule has a name',
    );
  });
}

t.test('every method has an example file of its own that uses it', async (t) => {
  for (const method of HBA_METHODS) {
    if (METHODS_WITHOUT_OWN_EXAMPLE.includes(method)) continue;
    const table = example(`${method}.yaml`);
    t.ok(table, `hba/examples/${method}.yaml exists and parses`);
    t.ok(
      table?.rules.some((rule) => rule.method === method),
      `hba/examples/${method}.yaml has a rule with method ${method}`,
    );
  }
});

t.test('the examples together use every method of the seeds and every method pgward knows', async (t) => {
  const used = new Set(
    [...tables.values()].flatMap((table) => table?.rules.map((rule) => rule.method) ?? []),
  );
  t.same(
    SEED_METHODS.filter((method) => !used.has(method)),
    [],
    'seed methods without an example',
  );
  t.same(
    HBA_METHODS.filter((method) => !used.has(method)),
    [],
    'methods without an example',
  );
});

t.test('examples of methods the seeds describe over HTTP have protocol: http rules', async (t) => {
  const protocols = (name: string) => new Set(example(name)?.rules.map((rule) => rule.protocol));
  for (const name of ['trust.yaml', 'password.yaml', 'jwt.yaml', 'http.yaml']) {
    t.ok(protocols(name).has('http'), `${name} has a protocol: http rule`);
  }
  const column = protocols('protocol-column.yaml');
  t.same([...column].sort(), ['any', 'http', 'pg'], 'protocol-column.yaml uses pg, http and any');
});
