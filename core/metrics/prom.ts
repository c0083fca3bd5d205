/**
 * The parts of prom-client ztna uses, loaded from their own modules: the
 * package's entry point also loads cluster, push-gateway, default-metrics and
 * OpenTelemetry support (about 10 MiB resident in every program) that ztna
 * never uses. Types come from the package as usual.
 */
import { createRequire } from "node:module";
import type * as Prom from "prom-client";

const load = createRequire(import.meta.url);

export const Registry: typeof Prom.Registry = load("prom-client/lib/registry.js");
export const Counter: typeof Prom.Counter = load("prom-client/lib/counter.js");
export const Gauge: typeof Prom.Gauge = load("prom-client/lib/gauge.js");
export const Histogram: typeof Prom.Histogram = load("prom-client/lib/histogram.js");
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
