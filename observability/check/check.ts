// Checks a PromQL expression against the catalog of exported metrics: every
// series name must exist, every label it filters or groups on must exist on
// that series, and equality matchers on closed label vocabularies must use a
// value the code can produce.
import { analyseQuery } from "./promql.ts";
import { type Catalog, TARGET_LABELS } from "./catalog.ts";

/** Series Prometheus itself generates for each target; not ours to check. */
const PROMETHEUS_SERIES: Record<string, readonly string[]> = { up: TARGET_LABELS };

const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"] as const;

export interface Resolved {
  /** The metric family (histogram suffix stripped). */
  family: string;
  labels: Set<string>;
  presetValues: Map<string, Set<string>>;
}

/** Resolves a series name as written in a query; a string is the problem if it cannot. */
export function resolveSeries(series: string, catalog: Catalog): Resolved | string {
  const builtin = PROMETHEUS_SERIES[series];
  if (builtin) return { family: series, labels: new Set(builtin), presetValues: new Map() };
  const target = (labels: Iterable<string>) => new Set([...labels, ...TARGET_LABELS]);
  const direct = catalog.get(series);
  if (direct) {
    if (direct.type === "histogram") return `${series} is a histogram: query ${series}_bucket, _sum or _count`;
    return { family: series, labels: target(direct.labels), presetValues: direct.presetValues };
  }
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!series.endsWith(suffix)) continue;
    const family = catalog.get(series.slice(0, -suffix.length));
    if (family?.type !== "histogram") continue;
    // `le` exists only on the buckets.
    const labels = [...family.labels].filter((l) => suffix === "_bucket" || l !== "le");
    return { family: family.name, labels: target(labels), presetValues: new Map() };
  }
  return `unknown metric ${series}`;
}

/** Problems found in one expression (empty when it only uses what the code exports). */
export function checkQuery(expr: string, catalog: Catalog): string[] {
  let uses;
  try {
    uses = analyseQuery(expr);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  const resolved = new Map<string, Resolved>();
  for (const s of uses.selectors) {
    const r = resolveSeries(s.metric, catalog);
    if (typeof r === "string") {
      problems.push(r);
      continue;
    }
    resolved.set(s.metric, r);
    for (const m of s.matchers) {
      if (!r.labels.has(m.label)) {
        problems.push(`${s.metric} has no label ${m.label}`);
        continue;
      }
      const vocabulary = r.presetValues.get(m.label);
      if (vocabulary && m.op === "=" && !vocabulary.has(m.value)) {
        problems.push(`${s.metric}{${m.label}="${m.value}"}: value not in [${[...vocabulary].join(", ")}]`);
      }
    }
  }
  for (const g of uses.groupings) {
    const on = g.metrics.map((m) => resolved.get(m)).filter((r) => r !== undefined);
    for (const label of g.labels) {
      const missing = on.filter((r) => !r.labels.has(label));
      // by/without: every aggregated series needs the label; matching clauses: at least one side.
      const bad = g.kind === "by" || g.kind === "without" ? missing.length > 0 : missing.length === on.length;
      if (bad) problems.push(`${g.kind} (${label}): not a label of ${missing.map((r) => r.family).join(", ")}`);
    }
  }
  return problems;
}
