/**
 * What `check` and `explain` look at: the files `pgward start` would read given the same flags — a
 * pgward.yaml (`--config`, or ./pgward.yaml when present), else the embedded default's rules and the
 * state dir's users file.
 */

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IMPLEMENTED_FEATURES } from '../auth/registry.ts';
import { loadPgwardConfig } from '../config/pgward-config.ts';
import { EMPTY_USER_DIRECTORY, loadUsersFile, type UserDirectory } from '../credentials/users-file.ts';
import { DEFAULT_HBA_FILE } from '../embedded/default-setup.ts';
import { ConfigError } from '../errors/config-error.ts';
import { serverInterfacesFrom } from '../hba/address.ts';
import { type HbaTable, loadHbaFile } from '../hba/parse.ts';
import type { ServerInterface } from '../hba/rule.ts';
import { loadLiveParts } from '../pgward.ts';

/** The loaded files. */
export interface ConfigTarget {
  /** The files read, for the summary line. */
  files: string[];
  hba: HbaTable;
  users: UserDirectory;
  serverInterfaces: readonly ServerInterface[];
}

/** Flags that choose the target. */
export interface TargetFlags {
  config?: string | undefined;
  'state-dir'?: string | undefined;
}

/** Loads the target; throws ConfigError with every problem of every file. */
export function loadConfigTarget(flags: TargetFlags): ConfigTarget {
  const configFile = flags.config ?? (existsSync('pgward.yaml') ? 'pgward.yaml' : undefined);
  if (configFile !== undefined) {
    const config = loadPgwardConfig(path.resolve(configFile));
    const parts = loadLiveParts(config);
    return {
      files: [config.file ?? configFile, config.hbaFile, ...(config.usersFile ? [config.usersFile] : [])],
      hba: parts.hba,
      users: parts.users,
      serverInterfaces: parts.serverInterfaces,
    };
  }
  const usersFile = path.resolve(flags['state-dir'] ?? '.pgward', 'users.yaml');
  const problems: ConfigError[] = [];
  let hba: HbaTable | undefined;
  let users: UserDirectory = EMPTY_USER_DIRECTORY;
  try {
    hba = loadHbaFile(DEFAULT_HBA_FILE, { features: IMPLEMENTED_FEATURES });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(error);
  }
  try {
    if (existsSync(usersFile)) users = loadUsersFile(usersFile);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(error);
  }
  if (!hba || problems.length > 0) throw new ConfigError(problems.flatMap((error) => error.problems));
  return {
    files: [DEFAULT_HBA_FILE, ...(existsSync(usersFile) ? [usersFile] : [])],
    hba,
    users,
    serverInterfaces: serverInterfacesFrom(os.networkInterfaces()),
  };
}
