/**
 * `pgward check`: validates pgward.yaml and every file it names (rules, users, TLS material), printing
 * each problem as `file:line:column: path: message` and each warning; exits 1 when anything is wrong.
 */

import { ConfigError } from '../errors/config-error.ts';
import { loadConfigTarget, type TargetFlags } from './config-target.ts';

/** Runs the check; returns the exit code. */
export function runCheck(flags: TargetFlags): number {
  try {
    const target = loadConfigTarget(flags);
    for (const warning of target.hba.warnings) process.stderr.write(`warning: ${warning}\n`);
    process.stdout.write(`ok: ${target.files.join(', ')} (${target.hba.rules.length} rules)\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
}
