/**
 * Maps HBA method names to their AuthMethod implementations, and tells the HBA parser which methods
 * and options this pgward implements (a rule naming anything else is refused when the file loads,
 * never accepted and ignored).
 */

import type { HbaFeatures, OptionKey } from '../hba/methods.ts';
import type { HbaMethod } from '../hba/rule.ts';
import { certMethod } from './cert.ts';
import { jwtMethod } from './jwt.ts';
import { md5Method } from './md5.ts';
import type { AuthMethod } from './method.ts';
import { oauthMethod } from './oauth.ts';
import { passwordMethod } from './password.ts';
import { rejectMethod } from './reject.ts';
import { scramSha256Method } from './scram-sha-256.ts';
import { trustMethod } from './trust.ts';

const METHODS: Partial<Record<HbaMethod, AuthMethod>> = {
  trust: trustMethod,
  reject: rejectMethod,
  password: passwordMethod,
  md5: md5Method,
  'scram-sha-256': scramSha256Method,
  cert: certMethod,
  jwt: jwtMethod,
  oauth: oauthMethod,
};

/** Rule options the implemented methods act on. */
const OPTIONS: ReadonlySet<OptionKey> = new Set<OptionKey>([
  'allow_cleartext',
  'upstream_login',
  'clientcert',
  'clientname',
  'map',
  'validator',
  'issuer',
  'scope',
]);

/** What rules may use. */
export const IMPLEMENTED_FEATURES: HbaFeatures = {
  hasMethod: (method) => METHODS[method] !== undefined,
  hasOption: (option) => OPTIONS.has(option),
};

/** The implementation of a rule's method (rules naming others never load). */
export function authMethodFor(method: HbaMethod): AuthMethod {
  const implementation = METHODS[method];
  if (!implementation) throw new Error(`method "${method}" is not implemented`);
  return implementation;
}
