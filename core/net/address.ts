/**
 * Transport addresses, shared by the runtime adapters, the QUIC engine and the
 * wire protocol (which encodes them in core/frame): one type, one formatter.
 */

/** A transport address: dotted IPv4 or canonical (RFC 5952) IPv6 text, and a port. */
export interface Address {
  host: string;
  port: number;
}

/** `127.0.0.1:4433` or `[::1]:4433`: the form logs, metrics and flags use. */
export function formatAddress(a: Address): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Dotted IPv4 text as a 32-bit number (for routes and packet filters), or null if it is not one. */
export function ipv4Number(host: string): number | null {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}
