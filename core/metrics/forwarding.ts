// The forwarding trio every client program counts per datagram: datagrams and
// payload bytes by direction, drops by reason. Every series exists (at 0)
// from the first scrape, so rate() and alerts work before the first event.
import type { Registry } from "prom-client";
import { counterFamily, each, preset } from "./cells.ts";

export function forwardingMetrics<D extends string, R extends string>(
  registry: Registry,
  names: { datagrams: string; bytes: string; drops: string },
  directions: readonly D[],
  reasons: readonly R[],
) {
  return {
    datagrams: preset(
      counterFamily<{ direction: D }>(registry, names.datagrams, "Datagrams forwarded, by direction", ["direction"]),
      each("direction", directions),
    ),
    bytes: preset(
      counterFamily<{ direction: D }>(registry, names.bytes, "Payload bytes forwarded, by direction", ["direction"]),
      each("direction", directions),
    ),
    drops: preset(
      counterFamily<{ reason: R }>(registry, names.drops, "Datagrams dropped, by reason", ["reason"]),
      each("reason", reasons),
    ),
  };
}
