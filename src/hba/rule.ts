/**
 * The shape of one parsed HBA rule and of the connection facts it is matched against.
 * Types only; parse.ts builds rules, match.ts evaluates them, methods.ts says which options go with
 * which method.
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */

import type { CidrRange, IpAddress } from './address.ts';

/** Connection types, PostgreSQL's spelling. */
export const CONNECTION_TYPES = ['local', 'host', 'hostssl', 'hostnossl'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** Which front door a connection came through (CrateDB's `protocol` column). */
export const PROTOCOLS = ['pg', 'http', 'any'] as const;
export type RuleProtocol = (typeof PROTOCOLS)[number];

/** Authentication methods a rule may name (DESIGN.md's table). */
export const HBA_METHODS = [
  'trust',
  'reject',
  'password',
  'md5',
  'scram-sha-256',
  'cert',
  'jwt',
  'oauth',
  'http',
  'browser',
] as const;
export type HbaMethod = (typeof HBA_METHODS)[number];

/**
 * A database or user pattern. Keywords are written bare; a quoted scalar (`"all"`) is always a plain
 * name, as a double-quoted word is in pg_hba.conf.
 */
export type NamePattern =
  | { kind: 'all' }
  /** Database only: the database named like the user. */
  | { kind: 'sameuser' }
  /** Database only: the user is a member of the group named like the database (or is it). */
  | { kind: 'samerole' }
  /** Database only: physical replication connections. */
  | { kind: 'replication' }
  /** User only (`+name`): the user is a member of the group (or is it). */
  | { kind: 'group'; group: string }
  /** `/regex`: the regular expression matches somewhere in the name. */
  | { kind: 'regex'; source: string; regex: RegExp }
  | { kind: 'name'; value: string };

/** An address pattern of a non-local rule. */
export type AddressPattern =
  | { kind: 'all' }
  /** Any of the server's own addresses. */
  | { kind: 'samehost' }
  /** Any address in a subnet the server is directly connected to. */
  | { kind: 'samenet' }
  | { kind: 'cidr'; range: CidrRange };

/** `clientcert`: whether (and how far) a client certificate is checked on top of the method. */
export type ClientCertMode = 'verify-ca' | 'verify-full';

/** The method options a rule may carry; which ones apply to which method is methods.ts's table. */
export interface RuleOptions {
  /** Let a method that receives a secret in clear run over a connection without TLS. */
  allowCleartext: boolean;
  clientcert: ClientCertMode | undefined;
  /** `cert`: match the user against the certificate's CN (default) or its whole DN. */
  clientname: 'CN' | 'DN' | undefined;
  /** The ident map (a key of HbaTable.maps) translating the authenticated identity into user names. */
  map: string | undefined;
  /** `jwt` / `oauth`: the named token validator. */
  validator: string | undefined;
  /** `oauth`: the issuer and scope advertised in the discovery response. */
  issuer: string | undefined;
  scope: string | undefined;
  /** `http`: the named HTTP authentication server. */
  server: string | undefined;
  /** `browser`: the named OAuth2 login profile. */
  profile: string | undefined;
  /** The named upstream login (pgward.yaml `upstream.logins`) for connections this rule lets in. */
  upstreamLogin: string | undefined;
}

/** Where something is in its file (1-based). */
export interface RuleSource {
  file: string;
  line: number;
  column: number;
}

/** One HBA rule, as parsed. */
export interface HbaRule {
  /** 0-based position in the file. */
  index: number;
  /** The rule's `name`, or `rule N` (1-based) when it has none. */
  name: string;
  /** Where the rule starts in its file, for logs, warnings and `explain`. */
  source: RuleSource;
  type: ConnectionType;
  protocol: RuleProtocol;
  databases: readonly NamePattern[];
  users: readonly NamePattern[];
  /** Null for `local` rules. */
  addresses: readonly AddressPattern[] | null;
  method: HbaMethod;
  options: RuleOptions;
  comment: string | undefined;
}

/** One of the server's own interface addresses (for `samehost` and `samenet`). */
export interface ServerInterface {
  address: IpAddress;
  /** The interface's prefix length (its netmask). */
  prefix: number;
}

/** Everything the matcher may know about a connection. */
export interface ConnectionFacts {
  /** 'local' for Unix-socket clients. */
  transport: 'local' | 'tcp';
  /** Normalized client address (IPv4-mapped IPv6 already turned into IPv4); null for local. */
  address: IpAddress | null;
  tls: boolean;
  protocol: 'pg' | 'http';
  database: string;
  user: string;
  replication: false | 'physical' | 'logical';
  /** The groups the user belongs to (from the users file), for `+group` and `samerole`. */
  groups: ReadonlySet<string>;
  /** The server's own addresses, for `samehost` and `samenet`. */
  serverInterfaces: readonly ServerInterface[];
}
