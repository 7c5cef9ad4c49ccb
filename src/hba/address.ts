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

/**
 * Parses IPv6 text. Embedded dotted IPv4 (`::10.1.2.3`, `64:ff9b::10.1.2.3`) is rewritten as hex
 * first: ipaddr.js would read every such form as IPv4-mapped, and an IPv6 client of that address
 * would then pass for an IPv4 one.
 */
function parseIPv6(text: string): ipaddr.IPv6 | null {
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  let hex = text;
  if (dotted?.[1] !== undefined && dotted[2] !== undefined) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(dotted[2])) return null;
    const [a = 0, b = 0, c = 0, d = 0] = ipaddr.IPv4.parse(dotted[2]).octets;
    hex = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  return ipaddr.IPv6.isValid(hex) ? ipaddr.IPv6.parse(hex) : null;
}

/** Parses an address as written in a rule: four-part IPv4 or IPv6 only; null if invalid. */
export function parseRuleAddress(text: string): IpAddress | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  return text.includes(':') ? parseIPv6(text) : null;
}

/** The address with every bit past `prefix` cleared. */
export function networkOf(address: IpAddress, prefix: number): IpAddress {
  const bytes = address.toByteArray().map((byte, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return byte & (0xff << (8 - keep)) & 0xff;
  });
  return ipaddr.fromByteArray(bytes);
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
      message: `invalid prefix length "/${prefixText}" for an ${address.kind() === 'ipv4' ? 'IPv4' : 'IPv6'} address (0..${maxPrefix})`,
    };
  }
  const prefix = Number(prefixText);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && prefix >= 96) {
    const v4 = (address as ipaddr.IPv6).toIPv4Address().toString();
    return {
      ok: false,
      message: `"${text}" is an IPv4-mapped range, which never matches: clients are matched as IPv4; write ${v4}/${prefix - 96}`,
    };
  }
  const network = networkOf(address, prefix);
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
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  const v6 = bare.includes(':') ? parseIPv6(bare) : null;
  if (!v6) return null;
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
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
