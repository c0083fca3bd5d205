/**
 * The parts of prom-client ztna uses, loaded from their own modules: the
 * package's entry point also loads cluster, push-gateway, default-metrics and
 * OpenTelemetry support (about 10 MiB resident in every program) that ztna
 * never uses. Static imports, so `bun build --compile` embeds them; types come
 * from the package (prom-modules.d.ts).
 */
import type * as Prom from "prom-client";
import RegistryImpl from "prom-client/lib/registry.js";
import CounterImpl from "prom-client/lib/counter.js";
import GaugeImpl from "prom-client/lib/gauge.js";
import HistogramImpl from "prom-client/lib/histogram.js";

// Deno types these CommonJS modules from their JavaScript (looser than the
// package's declarations, which Bun and tsc read): state the package's types.
export const Registry = RegistryImpl as unknown as typeof Prom.Registry;
export const Counter = CounterImpl as unknown as typeof Prom.Counter;
export const Gauge = GaugeImpl as unknown as typeof Prom.Gauge;
export const Histogram = HistogramImpl as unknown as typeof Prom.Histogram;
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
