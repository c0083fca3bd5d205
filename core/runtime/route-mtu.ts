/**
 * The MTU of the interface the kernel would use to reach an address: the
 * upper bound of what a path toward it can carry (the path may carry less,
 * which is why links probe before they use it). Linux only, from /proc and
 * /sys; null where that cannot be read.
 */
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { ipv4Number } from "../net/address.ts";

/** The largest UDP payload an interface MTU allows toward `host` (IP and UDP headers off), or null. */
export function routeUdpPayload(host: string): number | null {
  const v6 = host.includes(":");
  const mtu = routeMtu(host, v6);
  if (mtu === null) return null;
  return mtu - (v6 ? 48 : 28);
}

function routeMtu(host: string, v6: boolean): number | null {
  try {
    const iface = isLocal(host, v6) ? "lo" : v6 ? routeIfaceV6(host) : routeIfaceV4(host);
    if (iface === null) return null;
    const mtu = Number(readFileSync(`/sys/class/net/${iface}/mtu`, "utf8").trim());
    return Number.isInteger(mtu) && mtu > 0 ? mtu : null;
  } catch {
    return null;
  }
}

/** Loopback, or one of this host's own addresses (the kernel routes those through lo). */
function isLocal(host: string, v6: boolean): boolean {
  if (v6 ? host === "::1" : host.startsWith("127.")) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.address === host) return true;
  }
  return false;
}

/** /proc/net/route holds little-endian hex: the longest matching prefix wins. */
function routeIfaceV4(host: string): string | null {
  const addr = ipv4Number(host);
  if (addr === null) return null;
  let best: { iface: string; bits: number } | null = null;
  for (const line of readFileSync("/proc/net/route", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = swap32(parseInt(f[1]!, 16));
    const mask = swap32(parseInt(f[7]!, 16));
    if (((addr & mask) >>> 0) !== ((dest & mask) >>> 0)) continue;
    const bits = popcount(mask);
    if (best === null || bits > best.bits) best = { iface: f[0]!, bits };
  }
  return best?.iface ?? null;
}

function swap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v >>>= 1) n += v & 1;
  return n;
}

/** /proc/net/ipv6_route: destination (32 hex digits), prefix length (hex), ..., interface last. */
function routeIfaceV6(host: string): string | null {
  const addr = expandV6(host);
  if (addr === null) return null;
  let best: { iface: string; bits: number } | null = null;
  for (const line of readFileSync("/proc/net/ipv6_route", "utf8").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const bits = parseInt(f[1]!, 16);
    if (!prefixMatches(addr, f[0]!, bits)) continue;
    if (best === null || bits > best.bits) best = { iface: f[9]!, bits };
  }
  return best?.iface ?? null;
}

function expandV6(host: string): string | null {
  const [head, tail] = host.split("::");
  const a = head ? head.split(":") : [];
  const b = tail ? tail.split(":") : [];
  if (host.includes("::") ? a.length + b.length > 7 : a.length !== 8) return null;
  const groups = [...a, ...Array(8 - a.length - b.length).fill("0"), ...b];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => g.padStart(4, "0")).join("").toLowerCase();
}

function prefixMatches(addr: string, dest: string, bits: number): boolean {
  const nibbles = Math.floor(bits / 4);
  if (addr.slice(0, nibbles) !== dest.slice(0, nibbles)) return false;
  const rest = bits % 4;
  if (rest === 0) return true;
  const mask = (0xf << (4 - rest)) & 0xf;
  return (parseInt(addr[nibbles]!, 16) & mask) === (parseInt(dest[nibbles]!, 16) & mask);
}
