/**
 * `pgward start`: runs pgward until SIGINT/SIGTERM, then ends every session with FATAL 57P01 and
 * stops the embedded PostgreSQL if it started one. SIGHUP (and any change to a configuration file)
 * reloads what can change live.
 */

import { formatListenAddress } from '../config/listen-address.ts';
import type { PgwardConfig } from '../config/pgward-config.ts';
import { DEFAULT_USER, type DefaultSetup, prepareDefaultSetup } from '../embedded/default-setup.ts';
import { createLogger } from '../observe/logger.ts';
import { startPgward } from '../pgward.ts';

function banner(setup: DefaultSetup, pg: string, host: string, port: number, http: string | null): string {
  const lines = [
    '',
    `pgward is listening on ${pg}, in front of an embedded PostgreSQL (data in ${setup.embedded.dataDir}).`,
    '',
    'Connect with psql:',
    `  psql "host=${host} port=${port} user=${DEFAULT_USER} dbname=postgres sslmode=require"`,
    '',
    setup.newPassword === null
      ? `Password: printed when ${setup.usersFile} was created; delete that file and restart for a new one.`
      : `Password (shown this once; stored only as a SCRAM verifier in ${setup.usersFile}):\n  ${setup.newPassword}`,
  ];
  if (http) lines.push('', `Health: http://${http}/healthz`);
  lines.push('', 'Stop with Ctrl-C.', '');
  return lines.join('\n');
}

/** What to start: a configuration file's pgward, or the embedded default. */
export type StartTarget =
  | { kind: 'config'; config: PgwardConfig }
  | { kind: 'embedded'; stateDir: string; port: number; httpPort: number };

/** Starts pgward (and the embedded upstream for the default) and waits for a signal. */
export async function runStart(target: StartTarget): Promise<void> {
  const setup =
    target.kind === 'embedded'
      ? await prepareDefaultSetup(target.stateDir, createLogger('info'), {
          port: target.port,
          httpPort: target.httpPort,
        })
      : null;
  const effective = target.kind === 'config' ? target.config : setup?.config;
  if (!effective) throw new Error('no configuration');
  let pgward: Awaited<ReturnType<typeof startPgward>>;
  try {
    pgward = await startPgward(effective, { watch: true });
  } catch (error) {
    await setup?.embedded.stop();
    throw error;
  }
  const first = pgward.pgAddresses[0];
  if (setup && first) {
    const http = pgward.httpAddress ? formatListenAddress(pgward.httpAddress) : null;
    process.stdout.write(banner(setup, formatListenAddress(first), first.host, first.port, http));
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    pgward.log.info({ signal }, 'shutting down');
    await pgward.close();
    await setup?.embedded.stop();
    pgward.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGHUP', () => pgward.reload('SIGHUP'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
