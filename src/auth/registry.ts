/**
 * Maps HBA method names to their AuthMethod implementations.
 */

import type { HbaMethod } from '../hba/rule.ts';
import type { AuthMethod } from './method.ts';
import { passwordMethod } from './password.ts';
import { rejectMethod } from './reject.ts';
import { trustMethod } from './trust.ts';

const METHODS: Record<HbaMethod, AuthMethod> = {
  trust: trustMethod,
  reject: rejectMethod,
  password: passwordMethod,
};

/** The implementation of a rule's method. */
export function authMethodFor(method: HbaMethod): AuthMethod {
  return METHODS[method];
}
