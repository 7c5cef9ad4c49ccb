/**
 * `trust`: accept the startup user as is; access is controlled by the HBA rule alone.
 */

import { type AuthMethod, accepted } from './method.ts';

export const trustMethod: AuthMethod = {
  name: 'trust',
  async begin(ctx) {
    return accepted({ user: ctx.user, authenticatedAs: ctx.user });
  },
};
