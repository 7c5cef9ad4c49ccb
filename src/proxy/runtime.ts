/**
 * Runtime: what every session shares — configuration, the current HBA table and users (swapped on
 * reload), TLS context, cancel keys, metrics and the logger.
 */

import type { Logger } from 'pino';
import type { PgwardConfig } from '../config/pgward-config.ts';
import type { CredentialSource } from '../credentials/credentials.ts';
import type { UserDirectory } from '../credentials/users-file.ts';
import type { HbaTable } from '../hba/parse.ts';
import type { ServerInterface } from '../hba/rule.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ServerTlsContext } from '../tls/server-context.ts';
import type { TokenValidators } from '../tokens/registry.ts';
import type { FailureDelays, PendingAuthGate } from './auth-throttle.ts';
import type { CancelMap } from './cancel-map.ts';

/** Shared state handed to sessions. Fields that reload are replaced whole, never mutated. */
export interface Runtime {
  config: PgwardConfig;
  hba: HbaTable;
  users: UserDirectory;
  /** Where methods look stored credentials up: the users file, then auth_query. */
  credentials: CredentialSource;
  /** The named token validators (kept across reloads while their configuration stays the same). */
  tokenValidators: TokenValidators;
  /** The secret unknown users' mock SCRAM salts derive from. */
  mockAuthSecret: Buffer;
  /** The server's own addresses, for `samehost` and `samenet` rules. */
  serverInterfaces: readonly ServerInterface[];
  tls: ServerTlsContext | null;
  cancelMap: CancelMap;
  /** Per (address, user) failure counts and the delay before answering further failures. */
  failureDelays: FailureDelays;
  /** The cap on connections that have not finished authenticating. */
  pendingAuth: PendingAuthGate;
  metrics: Metrics;
  log: Logger;
}
