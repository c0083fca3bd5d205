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
