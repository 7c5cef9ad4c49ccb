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
  start [--config pgward.yaml]
      run pgward against the upstream the config names
  start [--state-dir .pgward] [--port 6432] [--http-port 6480]
      run pgward on 127.0.0.1 in front of an embedded PostgreSQL kept in the state dir
`;

function fail(message: string): never {
  process.stderr.write(`pgward: ${message}\n`);
  process.exit(1);
}

function parsePort(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port > 65535)
    fail(`${flag} must be a port number (0..65535), got "${text}"`);
  return port;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { values } = parseArgs({
        args: rest,
        options: {
          config: { type: 'string' },
          'state-dir': { type: 'string' },
          port: { type: 'string' },
          'http-port': { type: 'string' },
        },
        strict: true,
      });
      if (values.config !== undefined) {
        if (
          values.port !== undefined ||
          values['http-port'] !== undefined ||
          values['state-dir'] !== undefined
        ) {
          fail(
            '--port, --http-port and --state-dir apply to the embedded default; with --config, use its listen: section',
          );
        }
        await runStart({ kind: 'config', config: loadPgwardConfig(values.config) });
        return;
      }
      await runStart({
        kind: 'embedded',
        stateDir: path.resolve(values['state-dir'] ?? '.pgward'),
        port: parsePort(values.port, 6432, '--port'),
        httpPort: parsePort(values['http-port'], 6480, '--http-port'),
      });
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
