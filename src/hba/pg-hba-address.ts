/**
 * The address of a pg_hba.conf host record for `pgward hba import`: a CIDR, an address followed by a
 * netmask, or `all` / `samehost` / `samenet`. Host bits, which PostgreSQL ignores, are cleared with a
 * warning; host names and IPv4-mapped ranges (which never match a client) are errors.
 *
 * @see https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
 */

import type ipaddr from 'ipaddr.js';
import { type IpAddress, networkOf, parseRuleAddress } from './address.ts';
import { type FieldQueue, type LineReport, requireSingleToken } from './pg-hba-line.ts';
import type { Field } from './pg-hba-reader.ts';
import type { YamlValue } from './pg-hba-yaml.ts';

const ADDRESS_KEYWORDS = new Set(['all', 'samehost', 'samenet']);

function looksLikeHostName(text: string): boolean {
  return !text.includes(':') && !/^[\d.]+$/.test(text);
}

function readPrefix(text: string, address: IpAddress, token: string, report: LineReport): number | undefined {
  const max = address.kind() === 'ipv4' ? 32 : 128;
  if (/^\d{1,3}$/.test(text) && Number(text) <= max) return Number(text);
  return report.error(`invalid CIDR mask in address "${token}"`);
}

/** The netmask field that follows an address written without `/prefix`, as a prefix length. */
function readNetmask(field: Field | undefined, address: IpAddress, report: LineReport): number | undefined {
  const missing = 'netmask specification; write the address in CIDR notation or follow it with a netmask';
  const text = requireSingleToken(field, missing, 'netmask', report)?.text;
  if (text === undefined) return undefined;
  const mask = parseRuleAddress(text);
  if (!mask) return report.error(`invalid IP mask "${text}"`);
  if (mask.kind() !== address.kind()) return report.error('IP address and mask do not match');
  const prefix = mask.prefixLengthFromSubnetMask();
  if (prefix === null) return report.error(`netmask ${text} is not contiguous, so it has no CIDR equivalent`);
  return prefix;
}

/** `address/prefix`; host bits, which PostgreSQL ignores, are cleared with a warning. */
function formatCidr(addressText: string, address: IpAddress, prefix: number, report: LineReport): string {
  const network = networkOf(address, prefix).toString();
  if (network === address.toString()) return `${addressText}/${prefix}`;
  const cidr = `${network}/${prefix}`;
  report.warn(`${addressText}/${prefix} has host bits set, which PostgreSQL ignores; written as ${cidr}`);
  return cidr;
}

/** The address of a host rule: one field, or two for an address followed by a netmask. */
export function readAddress(fields: FieldQueue, report: LineReport): YamlValue | undefined {
  const token = requireSingleToken(fields.take(), 'IP address specification', 'host address', report);
  if (token === undefined) return undefined;
  if (!token.quoted && ADDRESS_KEYWORDS.has(token.text)) return { text: token.text, style: 'plain' };
  const slash = token.text.indexOf('/');
  const addressText = slash < 0 ? token.text : token.text.slice(0, slash);
  const address = parseRuleAddress(addressText);
  if (!address) {
    return report.error(
      looksLikeHostName(addressText)
        ? `host names are not supported ("${addressText}"); write an address, a CIDR, all, samehost or samenet`
        : `invalid IP address "${addressText}"`,
    );
  }
  const prefix =
    slash < 0
      ? readNetmask(fields.take(), address, report)
      : readPrefix(token.text.slice(slash + 1), address, token.text, report);
  if (prefix === undefined) return undefined;
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return report.error(
      `${token.text} is an IPv4-mapped range: it never matches a client (they are matched as IPv4)`,
    );
  }
  return { text: formatCidr(addressText, address, prefix, report), style: 'any' };
}
