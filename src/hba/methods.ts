/**
 * Which options go with which method, and where each method may be used. One table, read by the
 * parser to refuse options that do not belong to a rule's method (PostgreSQL refuses them too) and
 * methods that would send a secret over an unencrypted connection.
 */

import type { HbaMethod } from './rule.ts';

/** Option keys, as written in hba.yaml. */
export const OPTION_KEYS = [
  'allow_cleartext',
  'clientcert',
  'clientname',
  'map',
  'validator',
  'issuer',
  'scope',
  'server',
  'profile',
  'upstream_login',
] as const;
export type OptionKey = (typeof OPTION_KEYS)[number];

/** What a method allows. */
export interface MethodSpec {
  /** The options the method takes. */
  options: readonly OptionKey[];
  /** Options the method cannot do without. */
  required: readonly OptionKey[];
  /**
   * The client hands over a secret in clear (a password or a bearer token): the method is refused on
   * `host` and `hostnossl` rules unless the rule says `allow_cleartext: true`.
   */
  cleartextSecret: boolean;
  /** The method only makes sense over TLS (a client certificate): `hostssl` rules only. */
  hostsslOnly: boolean;
  /** The method has an HTTP form (Basic, Bearer, a client certificate, a redirect). */
  overHttp: boolean;
}

/** The table. */
export const METHOD_SPECS: Readonly<Record<HbaMethod, MethodSpec>> = {
  trust: {
    options: ['clientcert', 'upstream_login'],
    required: [],
    cleartextSecret: false,
    hostsslOnly: false,
    overHttp: true,
  },
  reject: { options: [], required: [], cleartextSecret: false, hostsslOnly: false, overHttp: true },
  password: {
    options: ['allow_cleartext', 'clientcert', 'upstream_login'],
    required: [],
    cleartextSecret: true,
    hostsslOnly: false,
    overHttp: true,
  },
  md5: {
    options: ['clientcert', 'upstream_login'],
    required: [],
    cleartextSecret: false,
    hostsslOnly: false,
    overHttp: false,
  },
  'scram-sha-256': {
    options: ['clientcert', 'upstream_login'],
    required: [],
    cleartextSecret: false,
    hostsslOnly: false,
    overHttp: false,
  },
  cert: {
    options: ['clientcert', 'clientname', 'map', 'upstream_login'],
    required: [],
    cleartextSecret: false,
    hostsslOnly: true,
    overHttp: true,
  },
  jwt: {
    options: ['validator', 'map', 'allow_cleartext', 'clientcert', 'upstream_login'],
    required: ['validator'],
    cleartextSecret: true,
    hostsslOnly: false,
    overHttp: true,
  },
  oauth: {
    options: ['validator', 'issuer', 'scope', 'map', 'allow_cleartext', 'clientcert', 'upstream_login'],
    // PostgreSQL 18 refuses an oauth line without issuer and scope: discovery needs both.
    required: ['validator', 'issuer', 'scope'],
    cleartextSecret: true,
    hostsslOnly: false,
    overHttp: true,
  },
  http: {
    options: ['server', 'allow_cleartext', 'clientcert', 'upstream_login'],
    required: [],
    cleartextSecret: true,
    hostsslOnly: false,
    overHttp: true,
  },
  browser: {
    options: ['profile', 'clientcert', 'upstream_login'],
    required: [],
    cleartextSecret: false,
    hostsslOnly: false,
    overHttp: true,
  },
};

/** Methods and options this pgward implements; the parser refuses the others with a located error. */
export interface HbaFeatures {
  hasMethod(method: HbaMethod): boolean;
  hasOption(option: OptionKey): boolean;
}

/** Every method and option of the table (for checking a file's shape alone, e.g. the shipped examples). */
export const ALL_FEATURES: HbaFeatures = { hasMethod: () => true, hasOption: () => true };
