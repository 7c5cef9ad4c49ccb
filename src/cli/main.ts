/**
 * The `pgward` command line: `start`, `check`, `explain`, `hba import` and `passwd`. Thin: parses arguments and
 * calls into the modules that do the work.
 */

import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadPgwardConfig } from '../config/pgward-config.ts';
import { ConfigError } from '../errors/config-error.ts';
import { runCheck } from './check.ts';
import { runExplain } from './explain.ts';
import { runHbaImport } from './hba-import.ts';
import { runPasswd } from './passwd.ts';
import { runStart } from './start.ts';

const USAGE = `usage: pgward <command> [options]

commands:
  start [--config pgward.yaml]
      run pgward against the upstream the config names
  start [--state-dir .pgward] [--port 6432] [--http-port 6480]
      run pgward on 127.0.0.1 in front of an embedded PostgreSQL kept in the state dir
  check [--config pgward.yaml | --state-dir .pgward]
      validate the configuration and every file it names; exit 1 on any problem
  explain --user U [--db D] --addr A|local [--tls] [--protocol pg|http] [--replication physical|logical]
          [--config pgward.yaml | --state-dir .pgward]
      print the HBA rule a connection would match, and why each earlier rule did not
  hba import pg_hba.conf
      convert a PostgreSQL pg_hba.conf to hba.yaml on stdout; problems on stderr
  passwd USER [--file users.yaml] [--stdin] [--md5]
      store USER's SCRAM-SHA-256 verifier (with --md5 also the md5 hash; without, an old one is removed)
      in the users file, ./users.yaml by default (the embedded default's is .pgward/users.yaml); the
      password is typed twice at the terminal, or with --stdin read from stdin (one trailing newline
      removed)

Without --config, check and explain read ./pgward.yaml when it exists, else the embedded default's
rules (hba/default.yaml) and the state dir's users file, as start does.
`;

function fail(message: string, code = 1): never {
  process.stderr.write(`pgward: ${message}\n`);
  process.exit(code);
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
    case 'check': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string' }, 'state-dir': { type: 'string' } },
        strict: true,
      });
      process.exitCode = runCheck(values);
      return;
    }
    case 'explain': {
      const { values } = parseArgs({
        args: rest,
        options: {
          config: { type: 'string' },
          'state-dir': { type: 'string' },
          user: { type: 'string' },
          db: { type: 'string' },
          addr: { type: 'string' },
          tls: { type: 'boolean', default: false },
          protocol: { type: 'string', default: 'pg' },
          replication: { type: 'string' },
        },
        strict: true,
      });
      // Exit 2 for a question that cannot be answered: 1 already means "no rule matches".
      if (values.user === undefined || values.addr === undefined) fail('explain needs --user and --addr', 2);
      if (values.protocol !== 'pg' && values.protocol !== 'http') fail('--protocol must be pg or http', 2);
      const replication = values.replication;
      if (replication !== undefined && replication !== 'physical' && replication !== 'logical')
        fail('--replication must be physical or logical', 2);
      try {
        process.exitCode = runExplain({
          ...values,
          user: values.user,
          addr: values.addr,
          protocol: values.protocol,
          replication,
        });
      } catch (error) {
        fail(
          error instanceof ConfigError ? `configuration error:\n${error.message}` : (error as Error).message,
          2,
        );
      }
      return;
    }
    case 'hba': {
      const [sub, ...args] = rest;
      if (sub !== 'import' || args.length !== 1 || args[0] === undefined)
        fail('usage: pgward hba import pg_hba.conf');
      process.exitCode = runHbaImport(args[0]);
      return;
    }
    case 'passwd': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: {
          file: { type: 'string', default: 'users.yaml' },
          stdin: { type: 'boolean', default: false },
          md5: { type: 'boolean', default: false },
        },
        allowPositionals: true,
        strict: true,
      });
      const [user] = positionals;
      if (positionals.length !== 1 || user === undefined)
        fail('usage: pgward passwd USER [--file users.yaml] [--stdin] [--md5]');
      if (user === '') fail('the user name must not be empty');
      process.exitCode = await runPasswd({ user, ...values });
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
