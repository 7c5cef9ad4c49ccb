/**
 * The `pgward` command line: `start` (with --config, or the embedded default). Thin: parses arguments
 * and calls into the modules that do the work.
 */

import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadPgwardConfig } from '../config/pgward-config.ts';
import { ConfigError } from '../errors/config-error.ts';
import { runStart } from './start.ts';

const USAGE = `usage: pgward <command> [options]

commands:
  start [--config pgward.yaml] [--state-dir .pgward]
      run pgward; without --config, in front of an embedded PostgreSQL kept in the state dir
`;

function fail(message: string): never {
  process.stderr.write(`pgward: ${message}\n`);
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string' }, 'state-dir': { type: 'string' } },
        strict: true,
      });
      const config = values.config === undefined ? null : loadPgwardConfig(values.config);
      await runStart(config, path.resolve(values['state-dir'] ?? '.pgward'));
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) fail(`configuration error:\n${error.message}`);
  fail(error instanceof Error ? error.message : String(error));
});
