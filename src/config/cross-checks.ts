/**
 * Checks that span files: what hba.yaml asks of pgward.yaml that neither file can see alone. Findings
 * are warnings (the rule still serves other users), in the HBA table's `file:line:column` form.
 */

import type { HbaTable } from '../hba/parse.ts';
import type { PgwardConfig } from './pgward-config.ts';

/**
 * A rule whose validator admits external users, reached through an upstream login that is not a
 * `service` login: those users would be refused at connect time (they have no role of their own).
 */
function externalUserLogins(config: PgwardConfig, hba: HbaTable): string[] {
  const validators = new Map(config.tokenValidators.map((validator) => [validator.name, validator]));
  const warnings: string[] = [];
  for (const rule of hba.rules) {
    const validator =
      rule.options.validator === undefined ? undefined : validators.get(rule.options.validator);
    if (!validator?.externalUsers) continue;
    const chosen = rule.options.upstreamLogin;
    const login = chosen === undefined ? config.upstream.login : config.upstream.logins.get(chosen);
    if (!login || login.mode === 'service') continue;
    const name = chosen === undefined ? 'the default upstream login' : `upstream login "${chosen}"`;
    const { file, line, column } = rule.source;
    warnings.push(
      `${file}:${line}:${column}: rules[${rule.index}]: external users of validator "${validator.name}" cannot log in through rule "${rule.name}": ${name} has mode "${login.mode}"; give the rule a "service" upstream_login`,
    );
  }
  return warnings;
}

/** The table with the cross-file warnings added. */
export function withCrossChecks(config: PgwardConfig, hba: HbaTable): HbaTable {
  const warnings = externalUserLogins(config, hba);
  return warnings.length === 0 ? hba : { ...hba, warnings: [...hba.warnings, ...warnings] };
}
