// What the programs really export, read from live prom-client registries: the
// ground truth the dashboard and alert queries are checked against.
import type { Registry } from "prom-client";
import { AGENT_METRIC_NAMES, createAgentMetrics } from "../../agent/metrics.ts";
import { CONNECTOR_METRIC_NAMES, createConnectorMetrics } from "../../connector/metrics.ts";
import { type Component, createRegistry } from "../../core/metrics/registry.ts";
import { createServerMetrics, SERVER_METRIC_NAMES } from "../../server/metrics.ts";

export interface MetricInfo {
  name: string;
  type: string;
  component: Component | "process";
  /** Label names the metric's series carry (for histograms: those of `_bucket`, i.e. with `le`). */
  labels: Set<string>;
  /**
   * Label values of series the code pre-creates (`preset`). Such a label has a
   * closed vocabulary, so an equality matcher on it must use one of these.
   */
  presetValues: Map<string, Set<string>>;
}

export type Catalog = Map<string, MetricInfo>;

/** Labels Prometheus attaches to every scraped series. */
export const TARGET_LABELS: readonly string[] = ["job", "instance"];

const FACTORIES: Record<Component, { names: readonly string[]; create: (r: Registry) => object }> = {
  server: { names: SERVER_METRIC_NAMES, create: createServerMetrics },
  connector: { names: CONNECTOR_METRIC_NAMES, create: createConnectorMetrics },
  agent: { names: AGENT_METRIC_NAMES, create: createAgentMetrics },
};

/** A labels object that answers every label name, so `child()` of any family creates one series. */
const PROBE_LABELS = new Proxy({}, { get: (_target, key) => (typeof key === "string" ? "probe" : undefined) });

type Snapshot = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;

function labelValues(metric: Snapshot[number]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const v of metric.values) {
    for (const [k, value] of Object.entries(v.labels)) {
      if (!out.has(k)) out.set(k, new Set());
      out.get(k)!.add(String(value));
    }
  }
  return out;
}

function add(catalog: Catalog, component: MetricInfo["component"], before: Snapshot, after: Snapshot) {
  const preset = new Map(before.map((m) => [m.name, labelValues(m)]));
  for (const m of after) {
    catalog.set(m.name, {
      name: m.name,
      type: String(m.type),
      component,
      labels: new Set(labelValues(m).keys()),
      presetValues: preset.get(m.name) ?? new Map(),
    });
  }
}

export async function buildCatalog(): Promise<Catalog> {
  const catalog: Catalog = new Map();
  // Default process metrics: whatever createRegistry() itself registers.
  add(catalog, "process", [], await createRegistry("server").getMetricsAsJSON());
  const processNames = new Set(catalog.keys());

  for (const component of Object.keys(FACTORIES) as Component[]) {
    const { names, create } = FACTORIES[component];
    const registry = createRegistry(component);
    const metrics = create(registry);
    const before = await registry.getMetricsAsJSON();
    // Touch one child per labelled family so its label names show up even
    // when the code creates series only on first use.
    for (const member of Object.values(metrics)) {
      const family = member as { child?: unknown };
      if (typeof family.child === "function") (family.child as (labels: unknown) => unknown)(PROBE_LABELS);
    }
    const after = (await registry.getMetricsAsJSON()).filter((m) => !processNames.has(m.name));
    add(catalog, component, before, after);
    for (const name of names) {
      if (!catalog.has(name)) throw new Error(`${component}: ${name} is listed but not registered`);
    }
  }
  return catalog;
}
