/**
 * IP addresses and CIDR ranges for HBA: strict parsing of rule addresses (four-part IPv4 or IPv6,
 * host bits must be zero) and normalization of client addresses (`::ffff:a.b.c.d` becomes IPv4).
 * IPv4 ranges never match IPv6 clients and the reverse.
 */

import ipaddr from 'ipaddr.js';

/** A parsed IP address of either family. */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** A CIDR range: network address and prefix length. */
export interface CidrRange {
  network: IpAddress;
  prefix: number;
  /** The text as written, for messages. */
  text: string;
}

/** Parses an address as written in a rule: four-part IPv4 or IPv6 only; null if invalid. */
export function parseRuleAddress(text: string): IpAddress | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return null;
}

/** Result of parsing `a.b.c.d/n`, `a.b.c.d` or an IPv6 equivalent. */
export type CidrParse = { ok: true; range: CidrRange } | { ok: false; message: string };

/** Parses a CIDR (a bare address means a single host), refusing host bits set beyond the prefix. */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const address = parseRuleAddress(addressText);
  if (!address) return { ok: false, message: `invalid IP address "${addressText}"` };
  const maxPrefix = address.kind() === 'ipv4' ? 32 : 128;
  const prefixText = slash < 0 ? String(maxPrefix) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
    return {
      ok: false,
      message: `invalid prefix length "/${prefixText}" for an ${address.kind()} address (0..${maxPrefix})`,
    };
  }
  const prefix = Number(prefixText);
  const network =
    address.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${addressText}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${addressText}/${prefix}`);
  if (network.toString() !== address.toString()) {
    return {
      ok: false,
      message: `"${text}" has host bits set beyond /${prefix}; did you mean ${network.toString()}/${prefix}?`,
    };
  }
  return { ok: true, range: { network, prefix, text } };
}

/** Normalizes a socket's remote address: IPv4-mapped IPv6 becomes IPv4. Null for non-IP peers. */
export function normalizeClientAddress(raw: string | undefined): IpAddress | null {
  if (!raw) return null;
  const bare = raw.includes('%') ? raw.slice(0, raw.indexOf('%')) : raw;
  if (!ipaddr.isValid(bare)) return null;
  return ipaddr.process(bare);
}

/** True if the client address lies in the range; families never cross. */
export function cidrContains(range: CidrRange, address: IpAddress): boolean {
  if (range.network.kind() !== address.kind()) return false;
  return address.match(range.network, range.prefix);
}

/** One entry of `os.networkInterfaces()` (the fields used here). */
interface InterfaceEntry {
  address: string;
  cidr: string | null;
}

/** The server's own addresses and prefix lengths, for `samehost` and `samenet`. */
export function serverInterfacesFrom(
  interfaces: NodeJS.Dict<readonly InterfaceEntry[]>,
): { address: IpAddress; prefix: number }[] {
  const out: { address: IpAddress; prefix: number }[] = [];
  for (const entries of Object.values(interfaces)) {
    for (const entry of entries ?? []) {
      const address = normalizeClientAddress(entry.address);
      const prefix = Number(entry.cidr?.split('/')[1]);
      if (address && Number.isInteger(prefix)) out.push({ address, prefix });
    }
  }
  return out;
}
