/** Resolves a host name to the IP address text UDP sockets report, preferring IPv4. */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Address } from "../net/address.ts";

export async function resolveAddress(address: Address): Promise<Address> {
  if (isIP(address.host)) return { host: normaliseIp(address.host), port: address.port };
  try {
    const { address: ip } = await lookup(address.host, { family: 4 });
    return { host: ip, port: address.port };
  } catch {
    const { address: ip } = await lookup(address.host);
    return { host: normaliseIp(ip), port: address.port };
  }
}

/** `::ffff:1.2.3.4` and `1.2.3.4` are the same peer; sockets report the short form. */
function normaliseIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip.toLowerCase();
}
