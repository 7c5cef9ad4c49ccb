/**
 * The `http` section of pgward.yaml: how the HTTP `/sql` endpoint names users and how much it accepts.
 *
 *   http:
 *     default_user: dustin        # CrateDB's auth.trust.http_default_user: the user of a request that
 *                                 # names none (no Authorization header, no client certificate)
 *     max_body_bytes: 1048576     # a larger request body gets 413
 *     max_result_bytes: 67108864  # a larger result is dropped with 54000
 */

import { type At, MapReader, readInteger, readString } from './readers.ts';

/** The HTTP endpoint's settings. */
export interface HttpConfig {
  /** The user of a request that names none; null: such requests are refused (401). */
  defaultUser: string | null;
  maxBodyBytes: number;
  maxResultBytes: number;
}

export const DEFAULT_HTTP: HttpConfig = {
  defaultUser: null,
  maxBodyBytes: 1024 * 1024,
  maxResultBytes: 64 * 1024 * 1024,
};

/** Reads the `http` section. */
export function readHttp(at: At): HttpConfig | undefined {
  const map = MapReader.open(at, ['default_user', 'max_body_bytes', 'max_result_bytes']);
  if (!map) return undefined;
  const defaultUser = map.optional('default_user', readString, null);
  const maxBodyBytes = map.optional(
    'max_body_bytes',
    (a) => readInteger(a, 64, 1024 * 1024 * 1024),
    DEFAULT_HTTP.maxBodyBytes,
  );
  const maxResultBytes = map.optional(
    'max_result_bytes',
    (a) => readInteger(a, 1024, 4 * 1024 * 1024 * 1024),
    DEFAULT_HTTP.maxResultBytes,
  );
  if (defaultUser === '')
    at.file.error(map.at('default_user').node, `${at.path}.default_user`, 'must not be empty');
  if (
    defaultUser === undefined ||
    defaultUser === '' ||
    maxBodyBytes === undefined ||
    maxResultBytes === undefined
  )
    return undefined;
  return { defaultUser, maxBodyBytes, maxResultBytes };
}
