/**
 * `cert`: the client proves who it is with its TLS certificate alone (hostssl rules only): the
 * certificate must verify, and its CN — or DN with `clientname: DN` — must be the user, directly or
 * through the rule's ident map. No message is exchanged.
 */

import { checkCertificateName, validCertificate } from './client-certificate.ts';
import { type AuthMethod, accepted, rejected } from './method.ts';

export const certMethod: AuthMethod = {
  name: 'cert',
  async begin(ctx) {
    const valid = validCertificate(ctx.peerCertificate);
    if (!valid.ok) return rejected(valid.failure);
    const name = checkCertificateName(valid.certificate, ctx);
    if (!name.ok) return rejected(name.failure);
    return accepted({ user: ctx.user, authenticatedAs: name.authenticatedAs });
  },
};
