/**
 * `token_validators` in pgward.yaml: named validators (ClickHouse's "token processors"), each of one
 * kind, with the claim policy every kind shares.
 *
 *   token_validators:
 *     corp:
 *       kind: openid                  # jwks | jwks_file | pem | openid | introspection | azure
 *       discovery_url: https://idp.example/.well-known/openid-configuration
 *       audiences: [pgward]
 *       scopes: [db]
 *       principal_claim: preferred_username
 *
 * Kinds and their keys: `jwks` url; `jwks_file` file (a JWKS document); `pem` file (a public key or a
 * certificate, Vertica's jwt_rsa_public_key); `openid` discovery_url; `introspection` client_id,
 * client_secret and discovery_url or introspection_url (discovery wins when both are set, as in
 * Vertica), cache_ms (reuse of active answers, 0 by default); `azure` client_id and tenant_id (issuer and JWKS URL derived, audience = client_id, as in
 * ClickHouse). Files are read here, so a bad key is a located error when the configuration loads.
 *
 * What a token admits besides checking it: `external_users` (external-users.ts) lets in users that
 * users.yaml does not define, with a role from the token; `end_session_at_token_expiry` ends a
 * session when its token's `exp` passes.
 */

import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import {
  type At,
  MapReader,
  readBoolean,
  readChoice,
  readHttpUrl,
  readInteger,
  readList,
  readPath,
  readSecret,
  readString,
} from '../config/readers.ts';
import { type ExternalUsers, readExternalUsers } from './external-users.ts';
import { JWS_ALGORITHMS, type JwsAlgorithm } from './jwt-validator.ts';
import { parseJwks } from './key-source.ts';

export const VALIDATOR_KINDS = ['jwks', 'jwks_file', 'pem', 'openid', 'introspection', 'azure'] as const;
export type ValidatorKind = (typeof VALIDATOR_KINDS)[number];

/** Where a validator's verdict comes from. */
export type ValidatorSource =
  | { kind: 'jwks'; url: string }
  | { kind: 'jwks_file'; keys: JWK[] }
  | { kind: 'pem'; key: KeyObject }
  | { kind: 'openid'; discoveryUrl: string }
  | {
      kind: 'introspection';
      /** Discovery (its introspection_endpoint) or the endpoint itself. */
      endpoint: { discoveryUrl: string } | { url: string };
      clientId: string;
      clientSecret: string;
      /** How long an active answer is reused (0: not at all). */
      cacheMs: number;
    };

/** One named validator. */
export interface TokenValidatorConfig {
  name: string;
  source: ValidatorSource;
  /** The preset it came from (`azure`), for the log. */
  preset: 'azure' | null;
  /** Accepted issuers; null: the discovered issuer (openid), or any. */
  issuers: string[] | null;
  audiences: string[] | null;
  scopes: string[] | null;
  algorithms: JwsAlgorithm[];
  principalClaim: string;
  clockSkewSeconds: number;
  requireExp: boolean;
  maxTokenBytes: number;
  /** Background JWKS refresh period. */
  refreshMs: number;
  /** Least time between two fetches caused by unknown kids. */
  kidMissCooldownMs: number;
  /** Deadline of each request to the IdP. */
  timeoutMs: number;
  /** Users users.yaml does not define, admitted with a role their token grants (null: none). */
  externalUsers: ExternalUsers | null;
  /** End a session its token authenticated when the token expires. */
  endSessionAtExpiry: boolean;
}

const COMMON_KEYS = [
  'kind',
  'issuers',
  'audiences',
  'scopes',
  'algorithms',
  'principal_claim',
  'clock_skew_seconds',
  'require_exp',
  'max_token_bytes',
  'timeout_ms',
  'external_users',
  'end_session_at_token_expiry',
];
const REMOTE_KEYS = ['refresh_ms', 'kid_miss_cooldown_ms'];
const KIND_KEYS: Readonly<Record<ValidatorKind, readonly string[]>> = {
  jwks: ['url', ...REMOTE_KEYS],
  jwks_file: ['file'],
  pem: ['file'],
  openid: ['discovery_url', ...REMOTE_KEYS],
  introspection: ['discovery_url', 'introspection_url', 'client_id', 'client_secret', 'cache_ms'],
  azure: ['tenant_id', 'client_id', ...REMOTE_KEYS],
};

export const DEFAULT_ALGORITHMS: JwsAlgorithm[] = [...JWS_ALGORITHMS];

function readNonEmpty(at: At): string | undefined {
  const text = readString(at);
  if (text === '') {
    at.file.error(at.node, at.path, 'must not be empty');
    return undefined;
  }
  return text;
}

function readAlgorithm(at: At): JwsAlgorithm | undefined {
  const text = readString(at);
  if (text === undefined) return undefined;
  if ((JWS_ALGORITHMS as readonly string[]).includes(text)) return text as JwsAlgorithm;
  const why =
    text === 'none'
      ? 'unsigned tokens are never accepted'
      : /^HS\d+$/.test(text)
        ? 'HMAC would turn a public key into a shared secret'
        : `expected one of ${JWS_ALGORITHMS.join(', ')}`;
  at.file.error(at.node, at.path, `"${text}" is not accepted: ${why}`);
  return undefined;
}

function readJwksFile(at: At): JWK[] | undefined {
  const file = readPath(at);
  if (file === undefined) return undefined;
  try {
    return parseJwks(JSON.parse(readFileSync(file, 'utf8')), file);
  } catch (error) {
    at.file.error(at.node, at.path, `cannot read the JWKS: ${(error as Error).message}`);
    return undefined;
  }
}

function readPublicKey(at: At): KeyObject | undefined {
  const file = readPath(at);
  if (file === undefined) return undefined;
  try {
    const text = readFileSync(file, 'utf8');
    if (/PRIVATE KEY-----/.test(text)) throw new Error('it holds a private key; give the public key');
    return createPublicKey(text);
  } catch (error) {
    at.file.error(at.node, at.path, `cannot read a public key from ${file}: ${(error as Error).message}`);
    return undefined;
  }
}

function readStringList(at: At): string[] | undefined {
  const list = readList(at, readNonEmpty, true);
  if (list?.length === 0) {
    at.file.error(at.node, at.path, 'an empty list accepts nothing; leave the key out to skip the check');
    return undefined;
  }
  return list;
}

/** The source of each kind, from its own keys. */
function readSource(
  map: MapReader,
  kind: ValidatorKind,
): { source: ValidatorSource; issuers?: string[]; audiences?: string[] } | undefined {
  switch (kind) {
    case 'jwks': {
      const url = map.required('url', readHttpUrl);
      return url === undefined ? undefined : { source: { kind, url } };
    }
    case 'jwks_file': {
      const keys = map.required('file', readJwksFile);
      return keys === undefined ? undefined : { source: { kind, keys } };
    }
    case 'pem': {
      const key = map.required('file', readPublicKey);
      return key === undefined ? undefined : { source: { kind, key } };
    }
    case 'openid': {
      const discoveryUrl = map.required('discovery_url', readHttpUrl);
      return discoveryUrl === undefined ? undefined : { source: { kind, discoveryUrl } };
    }
    case 'introspection': {
      const discoveryUrl = map.optional('discovery_url', readHttpUrl);
      const url = map.optional('introspection_url', readHttpUrl);
      const clientId = map.required('client_id', readNonEmpty);
      const clientSecret = map.required('client_secret', readSecret);
      if (!map.has('discovery_url') && !map.has('introspection_url'))
        map.file.error(
          map.node,
          map.path,
          'kind "introspection" needs "discovery_url" or "introspection_url"',
        );
      const cacheMs = map.optional('cache_ms', (a) => readInteger(a, 0, 3_600_000), 0);
      const endpoint = discoveryUrl ? { discoveryUrl } : url ? { url } : undefined;
      if (!endpoint || clientId === undefined || clientSecret === undefined || cacheMs === undefined)
        return undefined;
      return { source: { kind, endpoint, clientId, clientSecret, cacheMs } };
    }
    case 'azure': {
      const tenantId = map.required('tenant_id', readNonEmpty);
      const clientId = map.required('client_id', readNonEmpty);
      if (tenantId === undefined || clientId === undefined) return undefined;
      const base = `https://login.microsoftonline.com/${encodeURIComponent(tenantId)}`;
      return {
        source: { kind: 'jwks', url: `${base}/discovery/v2.0/keys` },
        issuers: [`${base}/v2.0`],
        audiences: [clientId],
      };
    }
  }
}

function readValidator(at: At, name: string): TokenValidatorConfig | undefined {
  const kindMap = MapReader.open(at, 'any');
  if (!kindMap) return undefined;
  const kind = kindMap.required('kind', (a) => readChoice(a, VALIDATOR_KINDS));
  if (kind === undefined) return undefined;
  const map = MapReader.open(at, [...COMMON_KEYS, ...KIND_KEYS[kind]]);
  if (!map) return undefined;
  const read = readSource(map, kind);
  const issuers = map.optional('issuers', readStringList, read?.issuers ?? null);
  const audiences = map.optional('audiences', readStringList, read?.audiences ?? null);
  const scopes = map.optional('scopes', readStringList, null);
  const algorithms = map.optional('algorithms', (a) => readList(a, readAlgorithm, true), DEFAULT_ALGORITHMS);
  if (algorithms?.length === 0)
    map.file.error(map.at('algorithms').node, `${at.path}.algorithms`, 'no algorithm');
  const principalClaim = map.optional('principal_claim', readNonEmpty, 'sub');
  const clockSkewSeconds = map.optional('clock_skew_seconds', (a) => readInteger(a, 0, 3600), 60);
  const requireExp = map.optional('require_exp', readBoolean, true);
  const maxTokenBytes = map.optional('max_token_bytes', (a) => readInteger(a, 256, 1024 * 1024), 32768);
  const refreshMs = map.optional('refresh_ms', (a) => readInteger(a, 1000, 86_400_000), 600_000);
  const kidMissCooldownMs = map.optional('kid_miss_cooldown_ms', (a) => readInteger(a, 0, 3_600_000), 30_000);
  const timeoutMs = map.optional('timeout_ms', (a) => readInteger(a, 100, 60_000), 5000);
  const externalUsers = map.optional('external_users', readExternalUsers, null);
  const endSessionAtExpiry = map.optional('end_session_at_token_expiry', readBoolean, false);
  if (
    !read ||
    issuers === undefined ||
    audiences === undefined ||
    scopes === undefined ||
    !algorithms ||
    algorithms.length === 0 ||
    principalClaim === undefined ||
    clockSkewSeconds === undefined ||
    requireExp === undefined ||
    maxTokenBytes === undefined ||
    refreshMs === undefined ||
    kidMissCooldownMs === undefined ||
    timeoutMs === undefined ||
    externalUsers === undefined ||
    endSessionAtExpiry === undefined
  )
    return undefined;
  return {
    name,
    source: read.source,
    preset: kind === 'azure' ? 'azure' : null,
    issuers,
    audiences,
    scopes,
    algorithms,
    principalClaim,
    clockSkewSeconds,
    requireExp,
    maxTokenBytes,
    refreshMs,
    kidMissCooldownMs,
    timeoutMs,
    externalUsers,
    endSessionAtExpiry,
  };
}

/** Reads `token_validators`: a map of names to validators. */
export function readTokenValidators(at: At): TokenValidatorConfig[] | undefined {
  const map = MapReader.open(at, 'any');
  if (!map) return undefined;
  const out: TokenValidatorConfig[] = [];
  let ok = true;
  for (const name of map.keys()) {
    const validator = readValidator(map.at(name), name);
    if (validator) out.push(validator);
    else ok = false;
  }
  return ok ? out : undefined;
}
