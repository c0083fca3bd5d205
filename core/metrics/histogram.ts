// Histograms go straight to prom-client: they sit on handshake/reconnect
// paths (a few per second at most), where its per-call cost does not matter.
import { Histogram } from "./prom.ts";
import type { Registry } from "prom-client";

/** 100 µs … 5 s, roughly 1-2.5-5 per decade: covers a local handshake up to a slow WAN retry. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

export function histogram(
  registry: Registry,
  name: string,
  help: string,
  buckets: readonly number[] = LATENCY_BUCKETS,
): Histogram {
  return new Histogram({ name, help, buckets: [...buckets], registers: [registry] });
}
