/**
 * The shape of one parsed HBA rule and of the connection facts it is matched against.
 * Types only; parse.ts builds rules, match.ts evaluates them.
 */

import type { CidrRange, IpAddress } from './address.ts';

/** Connection types, PostgreSQL's spelling. */
export const CONNECTION_TYPES = ['local', 'host', 'hostssl', 'hostnossl'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** Which front door a connection came through (CrateDB's `protocol` column). */
export const PROTOCOLS = ['pg', 'http', 'any'] as const;
export type RuleProtocol = (typeof PROTOCOLS)[number];

/** Authentication methods a rule may name. */
export const HBA_METHODS = ['trust', 'reject', 'password'] as const;
export type HbaMethod = (typeof HBA_METHODS)[number];

/** A database or user pattern. */
export type NamePattern = { kind: 'all' } | { kind: 'replication' } | { kind: 'name'; value: string };

/** An address pattern of a non-local rule. */
export type AddressPattern = { kind: 'all' } | { kind: 'cidr'; range: CidrRange };

/** Method options a rule may carry. */
export interface RuleOptions {
  /** Allow cleartext `password` on a connection that is not TLS. */
  allowCleartext: boolean;
}

/** One HBA rule, as parsed. */
export interface HbaRule {
  /** 0-based position in the file. */
  index: number;
  /** The rule's `name`, or `rule N` (1-based) when it has none. */
  name: string;
  /** Where the rule starts in its file, for logs and `explain`. */
  source: { file: string; line: number };
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
}
