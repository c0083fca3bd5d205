// Turns every dashboard query into a recording rule, so `promtool check rules`
// parses it with Prometheus' own PromQL parser (the TypeScript checker only
// reads a subset). Grafana variables are replaced by plausible values first.
//
//   bun observability/check/dashboard-rules.ts [dashboard.json] > rules.json
//
// JSON is valid YAML, so the output is a rule file as it stands.

const DURATIONS: Record<string, string> = { __rate_interval: "1m", __interval: "30s", __range: "1h" };

/** Grafana's `$name` / `${name}` → a duration for the built-in intervals, else a match-all regex. */
export function substituteVariables(expr: string): string {
  return expr.replace(/\$(\{(\w+)\}|(\w+))/g, (_all, _braced, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    return DURATIONS[name] ?? ".*";
  });
}

interface Panel {
  id: number;
  targets?: { refId: string; expr: string }[];
}

export function dashboardRules(dashboard: { panels: Panel[] }): object {
  const rules = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ record: `dashboard:panel_${p.id}_${t.refId}`, expr: substituteVariables(t.expr) }))
  );
  return { groups: [{ name: "ztna-dashboard-queries", rules }] };
}

if (import.meta.main) {
  const path = process.argv[2] ?? new URL("../grafana/ztna-dashboard.json", import.meta.url).pathname;
  const dashboard = JSON.parse(await Bun.file(path).text()) as { panels: Panel[] };
  console.log(JSON.stringify(dashboardRules(dashboard), null, 2));
}
