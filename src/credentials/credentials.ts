/**
 * Where a user's stored credentials come from: the users file, then (when configured) the upstream
 * through auth_query. Credentials are PostgreSQL's stored forms — a SCRAM-SHA-256 verifier, an md5
 * hash — never a password. An unknown user is `undefined`, which every method treats exactly like a
 * wrong password.
 */

import type { ScramVerifier } from '../auth/scram/verifier.ts';
import type { UserDirectory } from './users-file.ts';

/** What pgward knows of a user's password. */
export interface StoredCredentials {
  scram: ScramVerifier | undefined;
  /** `md5` + md5(password ‖ user), as pg_authid stores it. */
  md5: string | undefined;
}

/** A place credentials are looked up. */
export interface CredentialSource {
  /** The user's credentials, or undefined when the source does not know the user. */
  lookup(user: string): Promise<StoredCredentials | undefined>;
}

/** The users file as a source: users with neither a verifier nor a hash are unknown here. */
export function usersFileCredentials(users: UserDirectory): CredentialSource {
  return {
    async lookup(name) {
      const user = users.find(name);
      if (!user || (user.scram === undefined && user.md5 === undefined)) return undefined;
      return { scram: user.scram, md5: user.md5 };
    },
  };
}

/** Asks each source in turn; the first that knows the user answers (PgBouncer: auth_file, then auth_query). */
export function chainCredentialSources(...sources: readonly CredentialSource[]): CredentialSource {
  return {
    async lookup(user) {
      for (const source of sources) {
        const found = await source.lookup(user);
        if (found) return found;
      }
      return undefined;
    },
  };
}
