/**
 * `reject`: always fails, with PostgreSQL's "pg_hba.conf rejects connection" message.
 */

import { type AuthMethod, rejected } from './method.ts';

export const rejectMethod: AuthMethod = {
  name: 'reject',
  async begin(ctx) {
    return rejected({ kind: 'hba-reject', reason: ctx.rule.name });
  },
};
