/**
 * Client certificate checks shared by the `cert` method and the `clientcert` rule option, with
 * PostgreSQL's semantics: a rule that needs a certificate needs a valid one (the chain verified
 * against the configured CA and CRL, inside its validity window); `cert` and `clientcert:
 * verify-full` then also need its name — the CN, or the RFC 2253 DN with `clientname: DN` — to be
 * the user, directly or through the rule's ident map.
 */

import { type IdentMap, mapIdentity } from '../hba/ident-map.ts';
import type { HbaRule } from '../hba/rule.ts';
import type { CertificateProblem, PeerCertificate } from '../tls/peer-certificate.ts';
import type { AuthFailure } from './failure.ts';

/** What the client is told about a certificate that did not verify: its own certificate's fault. */
const PROBLEM_DETAILS: Readonly<Record<CertificateProblem, string>> = {
  expired: 'The client certificate has expired.',
  'not-yet-valid': 'The client certificate is not yet valid.',
  untrusted: 'The client certificate is not signed by a trusted certificate authority.',
  revoked: 'The client certificate has been revoked.',
  invalid: 'The client certificate could not be verified.',
};

/** The presented certificate when it is valid; else the failure. */
export function validCertificate(
  certificate: PeerCertificate | null,
): { ok: true; certificate: PeerCertificate } | { ok: false; failure: AuthFailure } {
  if (!certificate)
    return { ok: false, failure: { kind: 'certificate-missing', reason: 'no client certificate presented' } };
  if (certificate.problem === null) return { ok: true, certificate };
  return {
    ok: false,
    failure: {
      kind: 'certificate-invalid',
      reason: `${certificate.problem} (${certificate.problemCode ?? 'no code'}), subject "${certificate.distinguishedName}"`,
      detail: PROBLEM_DETAILS[certificate.problem],
    },
  };
}

/** What a name check needs beyond the certificate. */
export interface NameCheckContext {
  user: string;
  rule: HbaRule;
  maps: ReadonlyMap<string, IdentMap>;
  groupsOf(user: string): ReadonlySet<string>;
}

/** The certificate's name as the user, or the failure. */
export type NameCheck = { ok: true; authenticatedAs: string } | { ok: false; failure: AuthFailure };

/** Checks the certificate's CN (or DN) against the user, through the rule's map when it has one. */
export function checkCertificateName(certificate: PeerCertificate, ctx: NameCheckContext): NameCheck {
  const field = ctx.rule.options.clientname === 'DN' ? 'DN' : 'CN';
  const name = field === 'DN' ? certificate.distinguishedName : certificate.commonName;
  const fail = (reason: string): NameCheck => ({ ok: false, failure: { kind: 'certificate', reason } });
  if (!name) return fail(`client certificate does not contain a user name (no ${field})`);
  const mapName = ctx.rule.options.map;
  if (mapName === undefined) {
    if (name === ctx.user) return { ok: true, authenticatedAs: `${field} "${name}"` };
    return fail(`certificate ${field} "${name}" does not match user "${ctx.user}"`);
  }
  const map = ctx.maps.get(mapName);
  if (!map) return fail(`ident map "${mapName}" is not defined`);
  const match = mapIdentity(map, name, ctx.user, (user) => ctx.groupsOf(user));
  if (!match.ok)
    return fail(
      match.error ?? `no match in ident map "${mapName}" for ${field} "${name}" and user "${ctx.user}"`,
    );
  return {
    ok: true,
    authenticatedAs: `${field} "${name}" (ident map "${mapName}", entry ${match.entry + 1} at line ${match.line})`,
  };
}
