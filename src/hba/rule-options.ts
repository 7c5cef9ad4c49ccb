/**
 * The method and its options of an HBA rule: reads them, refuses options that do not belong to the
 * method (methods.ts's table) or that this pgward does not implement, and checks that type, protocol,
 * method and options fit together (PostgreSQL's own checks, TLS for methods that receive secrets).
 */

import { isScalar } from 'yaml';
import {
  type At,
  type MapReader,
  readBoolean,
  readChoice,
  readHttpUrl,
  readString,
  readUpstreamLoginName,
  readValidatorName,
} from '../config/readers.ts';
import { type HbaFeatures, METHOD_SPECS, OPTION_KEYS, type OptionKey } from './methods.ts';
import {
  type ConnectionType,
  HBA_METHODS,
  type HbaMethod,
  type RuleOptions,
  type RuleProtocol,
} from './rule.ts';

/** Names defined elsewhere (pgward.yaml) that rules may refer to; unchecked when absent. */
export interface HbaReferences {
  upstreamLogins?: ReadonlySet<string>;
  /** The names of pgward.yaml's `token_validators`. */
  validators?: ReadonlySet<string>;
}

function field<K extends keyof RuleOptions>(
  key: K,
  value: RuleOptions[K] | undefined,
): Partial<RuleOptions> | undefined {
  return value === undefined ? undefined : ({ [key]: value } as Partial<RuleOptions>);
}

/** An oauth rule's issuer: an http(s) URL; plain http works with pgward but not with libpq 18. */
function readIssuer(at: At): string | undefined {
  const issuer = readHttpUrl(at);
  if (issuer?.startsWith('http:'))
    at.file.warn(
      at.node,
      at.path,
      'libpq 18 refuses an issuer that is not https (unless PGOAUTHDEBUG=UNSAFE); other clients may too',
    );
  return issuer;
}

/** How each option is read, and which field of RuleOptions it sets. */
const OPTION_READERS: Readonly<
  Record<OptionKey, (at: At, references: HbaReferences) => Partial<RuleOptions> | undefined>
> = {
  allow_cleartext: (at) => field('allowCleartext', readBoolean(at)),
  clientcert: (at) => field('clientcert', readChoice(at, ['verify-ca', 'verify-full'] as const)),
  clientname: (at) => field('clientname', readChoice(at, ['CN', 'DN'] as const)),
  map: (at) => field('map', readString(at)),
  validator: (at, references) => field('validator', readValidatorName(at, references.validators)),
  issuer: (at) => field('issuer', readIssuer(at)),
  scope: (at) => field('scope', readString(at)),
  server: (at) => field('server', readString(at)),
  profile: (at) => field('profile', readString(at)),
  upstream_login: (at, references) =>
    field('upstreamLogin', readUpstreamLoginName(at, references.upstreamLogins)),
};

/** Reads the options present, refusing those the method does not take. */
export function readOptions(
  map: MapReader,
  method: HbaMethod | undefined,
  features: HbaFeatures,
  references: HbaReferences,
): RuleOptions {
  const options: RuleOptions = {
    allowCleartext: false,
    clientcert: undefined,
    clientname: undefined,
    map: undefined,
    validator: undefined,
    issuer: undefined,
    scope: undefined,
    server: undefined,
    profile: undefined,
    upstreamLogin: undefined,
  };
  const spec = method === undefined ? undefined : METHOD_SPECS[method];
  for (const key of OPTION_KEYS) {
    if (!map.has(key)) continue;
    const where = `${map.path}.${key}`;
    if (spec && !spec.options.includes(key)) {
      const takes = spec.options.length > 0 ? `it takes ${spec.options.join(', ')}` : 'it takes no options';
      map.file.error(map.keyNode(key), where, `"${key}" does not apply to method "${method}" (${takes})`);
      continue;
    }
    if (!features.hasOption(key)) {
      map.file.error(map.keyNode(key), where, `option "${key}" is not supported by this version of pgward`);
      continue;
    }
    Object.assign(options, OPTION_READERS[key](map.at(key), references));
  }
  for (const key of spec?.required ?? []) {
    if (!map.has(key)) map.file.error(map.node, map.path, `method "${method}" needs "${key}"`);
  }
  return options;
}

/** Checks that type, method and options fit together (PostgreSQL's own checks, and TLS for secrets). */
export function checkCombination(
  map: MapReader,
  type: ConnectionType,
  protocol: RuleProtocol | undefined,
  method: HbaMethod,
  options: RuleOptions,
): void {
  const spec = METHOD_SPECS[method];
  const file = map.file;
  if (type === 'local' && protocol === 'http') {
    file.error(
      map.at('protocol').node,
      `${map.path}.protocol`,
      'HTTP is served over TCP only: a local rule cannot be for http',
    );
  }
  if (!spec.overHttp && (protocol === 'http' || protocol === 'any')) {
    file.error(
      map.at('method').node,
      `${map.path}.method`,
      `method "${method}" has no HTTP form; write protocol: pg (or leave protocol out)`,
    );
  }
  if (spec.hostsslOnly && type !== 'hostssl') {
    file.error(
      map.at('method').node,
      `${map.path}.method`,
      `method "${method}" is only available on hostssl rules`,
    );
  }
  if (map.has('clientcert') && spec.options.includes('clientcert') && type !== 'hostssl') {
    file.error(
      map.keyNode('clientcert'),
      `${map.path}.clientcert`,
      'clientcert can only be configured for hostssl rules',
    );
  }
  if (method === 'cert' && options.clientcert === 'verify-ca') {
    file.error(
      map.at('clientcert').node,
      `${map.path}.clientcert`,
      'clientcert only accepts "verify-full" when using "cert" authentication',
    );
  }
  const unencrypted = type === 'host' || type === 'hostnossl';
  // An allow_cleartext of the wrong type has its own error already.
  const allowNode = map.at('allow_cleartext').node;
  const allowInvalid =
    map.has('allow_cleartext') && !(isScalar(allowNode) && typeof allowNode.value === 'boolean');
  if (spec.cleartextSecret && unencrypted && !options.allowCleartext && !allowInvalid) {
    file.error(
      map.at('method').node,
      `${map.path}.method`,
      `"${method}" on a "${type}" rule would accept secrets sent unencrypted; use "hostssl" or set allow_cleartext: true`,
    );
  }
  if (map.has('allow_cleartext') && spec.options.includes('allow_cleartext') && !unencrypted) {
    file.error(
      map.keyNode('allow_cleartext'),
      `${map.path}.allow_cleartext`,
      `applies to host and hostnossl rules only (${type === 'local' ? 'a Unix socket never leaves the machine' : 'hostssl connections are always encrypted'})`,
    );
  }
}

/** Reads `method`, refusing one this pgward does not implement. */
export function readMethod(at: At, features: HbaFeatures): HbaMethod | undefined {
  const method = readChoice(at, HBA_METHODS);
  if (method !== undefined && !features.hasMethod(method)) {
    at.file.error(at.node, at.path, `method "${method}" is not supported by this version of pgward`);
    return undefined;
  }
  return method;
}

/** Reads the rule's name; explicit names must be unique and not look like the default `rule N`. */
