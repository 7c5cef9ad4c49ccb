/**
 * Builds the named validators of `token_validators` and keeps them across reloads: a validator whose
 * configuration did not change is kept (with its fetched key set and discovery document); a changed
 * or removed one is closed.
 */

import { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { ClaimPolicy } from './claims.ts';
import { Discovery } from './discovery.ts';
import { IntrospectionValidator } from './introspection.ts';
import { JwtValidator } from './jwt-validator.ts';
import { RemoteJwks, staticKeySource } from './key-source.ts';
import type { TokenValidator } from './token.ts';
import type { TokenValidatorConfig } from './validator-config.ts';

/** After a failed discovery, an introspection validator tries again on a login at least this much later. */
const INTROSPECTION_DISCOVERY_RETRY_MS = 1000;

/** The validators by name. */
export type TokenValidators = ReadonlyMap<string, TokenValidator>;

function policyOf(config: TokenValidatorConfig, discovered?: () => string | null): ClaimPolicy {
  const policy: ClaimPolicy = {
    issuers: config.issuers,
    audiences: config.audiences,
    scopes: config.scopes,
    principalClaim: config.principalClaim,
    clockSkewSeconds: config.clockSkewSeconds,
    requireExp: config.requireExp,
  };
  if (config.issuers !== null || !discovered) return policy;
  // No issuers listed: the discovered issuer is the one accepted (known once discovery has run,
  // which always happens before the first token's claims are checked).
  return {
    ...policy,
    get issuers() {
      const issuer = discovered();
      return issuer === null ? [] : [issuer];
    },
  };
}

/** Builds one validator. */
export function buildValidator(config: TokenValidatorConfig, log: Logger): TokenValidator {
  const source = config.source;
  const remote = (url: string | (() => Promise<string>)) =>
    new RemoteJwks(url, {
      refreshMs: config.refreshMs,
      cooldownMs: config.kidMissCooldownMs,
      timeoutMs: config.timeoutMs,
      log: log.child({ validator: config.name }),
    });
  const jwtOptions = (policy: ClaimPolicy) => ({
    algorithms: config.algorithms,
    policy,
    maxTokenBytes: config.maxTokenBytes,
  });
  switch (source.kind) {
    case 'jwks':
      return new JwtValidator(
        config.name,
        { kind: 'jwks', source: remote(source.url) },
        jwtOptions(policyOf(config)),
      );
    case 'jwks_file':
      return new JwtValidator(
        config.name,
        { kind: 'jwks', source: staticKeySource(source.keys) },
        jwtOptions(policyOf(config)),
      );
    case 'pem':
      return new JwtValidator(config.name, { kind: 'pem', key: source.key }, jwtOptions(policyOf(config)));
    case 'openid': {
      const discovery = new Discovery(source.discoveryUrl, config.timeoutMs, config.kidMissCooldownMs);
      let issuer: string | null = null;
      const jwksUrl = async () => {
        const metadata = await discovery.metadata();
        issuer = metadata.issuer;
        if (!metadata.jwksUri) throw new Error(`${source.discoveryUrl}: no "jwks_uri"`);
        return metadata.jwksUri;
      };
      return new JwtValidator(
        config.name,
        { kind: 'jwks', source: remote(jwksUrl) },
        jwtOptions(policyOf(config, () => issuer)),
      );
    }
    case 'introspection': {
      const target = source.endpoint;
      let issuer: string | null = null;
      let endpoint: () => Promise<string>;
      if ('url' in target) endpoint = async () => target.url;
      else {
        const discovery = new Discovery(
          target.discoveryUrl,
          config.timeoutMs,
          INTROSPECTION_DISCOVERY_RETRY_MS,
        );
        endpoint = async () => {
          const metadata = await discovery.metadata();
          issuer = metadata.issuer;
          if (!metadata.introspectionEndpoint)
            throw new Error(`${target.discoveryUrl}: no "introspection_endpoint"`);
          return metadata.introspectionEndpoint;
        };
      }
      return new IntrospectionValidator(config.name, {
        endpoint,
        clientId: source.clientId,
        clientSecret: source.clientSecret,
        policy: policyOf(config, 'url' in target ? undefined : () => issuer),
        maxTokenBytes: config.maxTokenBytes,
        timeoutMs: config.timeoutMs,
        cacheMs: source.cacheMs,
      });
    }
  }
}

/** Whether two configurations are the same (keys compared by their SPKI form). */
function sameConfig(a: TokenValidatorConfig, b: TokenValidatorConfig): boolean {
  const text = (config: TokenValidatorConfig) =>
    JSON.stringify(config, (_key, value: unknown) =>
      value instanceof KeyObject ? value.export({ type: 'spki', format: 'pem' }) : value,
    );
  return text(a) === text(b);
}

/** The validators in force, rebuilt on reload where their configuration changed. */
export class TokenValidatorHolder {
  #entries = new Map<string, { config: TokenValidatorConfig; validator: TokenValidator }>();
  #view: Map<string, TokenValidator> = new Map();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  get validators(): TokenValidators {
    return this.#view;
  }

  /** Takes a (re)loaded configuration. */
  update(configs: readonly TokenValidatorConfig[]): void {
    const next = new Map<string, { config: TokenValidatorConfig; validator: TokenValidator }>();
    for (const config of configs) {
      const current = this.#entries.get(config.name);
      if (current && sameConfig(current.config, config)) next.set(config.name, current);
      else next.set(config.name, { config, validator: buildValidator(config, this.#log) });
    }
    for (const [name, entry] of this.#entries) {
      if (next.get(name) !== entry) entry.validator.close();
    }
    this.#entries = next;
    this.#view = new Map([...next].map(([name, entry]) => [name, entry.validator]));
  }

  close(): void {
    for (const entry of this.#entries.values()) entry.validator.close();
    this.#entries.clear();
    this.#view = new Map();
  }
}
