// The Grafana dashboard and the Prometheus rules only query what the programs
// really export: every series name, label and closed label value in every
// PromQL expression is checked against live registries (core/metrics), so a
// renamed metric or label fails here rather than silently emptying a panel.
// promtool itself (syntax, alert unit tests) runs in scripts/check-observability.sh.
import { beforeAll, describe, expect, test } from "bun:test";
import { AGENT_METRIC_NAMES } from "../agent/metrics.ts";
import { CONNECTOR_METRIC_NAMES } from "../connector/metrics.ts";
import { SERVER_METRIC_NAMES } from "../server/metrics.ts";
import { buildCatalog, type Catalog } from "../observability/check/catalog.ts";
import { checkQuery, resolveSeries } from "../observability/check/check.ts";
import { dashboardRules, substituteVariables } from "../observability/check/dashboard-rules.ts";
import { analyseQuery } from "../observability/check/promql.ts";
import { dashboardText } from "../observability/grafana/dashboard.ts";

const root = new URL("../observability/", import.meta.url);
const read = (path: string) => Bun.file(new URL(path, root)).text();

interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: GridPos;
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] };
}
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  alert_rule_test: { alertname: string; exp_alerts: unknown[] }[];
}

let catalog: Catalog;
let dashboardSource: string;
let dashboard: Dashboard;
let rules: Rule[];
let promConfig: {
  rule_files: string[];
  scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
};
let alertTests: { rule_files: string[]; tests: AlertTest[] };

beforeAll(async () => {
  catalog = await buildCatalog();
  dashboardSource = await read("grafana/ztna-dashboard.json");
  dashboard = JSON.parse(dashboardSource) as Dashboard;
  const alerts = Bun.YAML.parse(await read("prometheus/alerts.yml")) as { groups: { rules: Rule[] }[] };
  rules = alerts.groups.flatMap((g) => g.rules);
  promConfig = Bun.YAML.parse(await read("prometheus/prometheus.yml")) as typeof promConfig;
  alertTests = Bun.YAML.parse(await read("prometheus/alerts.test.yml")) as typeof alertTests;
});

/** Every PromQL query of the dashboard: panel targets, then query variables as `count by (label) (metric)`. */
function dashboardQueries(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels) {
    for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  }
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query as { query: string }).query;
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: unsupported query ${q}`);
    out.push({ where: `variable ${v.name}`, expr: `count by (${m[2]}) (${m[1]})` });
  }
  return out;
}

const problemsOf = (queries: { where: string; expr: string }[]) =>
  queries.flatMap(({ where, expr }) => checkQuery(expr, catalog).map((p) => `${where}: ${p}`));

describe("query checker", () => {
  test("reads names, matchers and grouping labels", () => {
    const uses = analyseQuery(
      'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="1", y=~"$v"}[$__rate_interval]))) / on (job) group_left sum(b) by (z)',
    );
    expect(uses.selectors).toEqual([
      { metric: "a_bucket", matchers: [{ label: "x", op: "=", value: "1" }, { label: "y", op: "=~", value: "$v" }] },
      { metric: "b", matchers: [] },
    ]);
    expect(uses.groupings).toEqual([
      { kind: "by", labels: ["le"], metrics: ["a_bucket"] },
      { kind: "on", labels: ["job"], metrics: ["a_bucket", "b"] },
      { kind: "by", labels: ["z"], metrics: ["b"] },
    ]);
  });

  test("accepts real metrics, including histogram series and process metrics", () => {
    expect(checkQuery("sum by (le, instance) (rate(ztna_server_handshake_duration_seconds_bucket[5m]))", catalog))
      .toEqual([]);
    expect(checkQuery('ztna_connector_drops_total{reason="source_mismatch", job="ztna-connector"}', catalog)).toEqual(
      [],
    );
    expect(checkQuery("rate(ztna_process_cpu_seconds_total[1m]) + ztna_process_resident_memory_bytes", catalog))
      .toEqual([]);
    expect(checkQuery('up{job=~"ztna-.*"} == 0', catalog)).toEqual([]);
  });

  test("rejects made-up metrics, labels and closed label values", () => {
    expect(resolveSeries("ztna_server_made_up_total", catalog)).toBe("unknown metric ztna_server_made_up_total");
    expect(checkQuery("rate(ztna_server_made_up_total[5m])", catalog)).toEqual([
      "unknown metric ztna_server_made_up_total",
    ]);
    expect(checkQuery('ztna_server_drops_total{direction="x"}', catalog)).toEqual([
      "ztna_server_drops_total has no label direction",
    ]);
    expect(checkQuery("sum by (kind) (ztna_server_drops_total)", catalog)).toEqual([
      "by (kind): not a label of ztna_server_drops_total",
    ]);
    expect(checkQuery('ztna_connector_drops_total{reason="source_mismatched"}', catalog)[0]).toMatch(/value not in/);
    expect(checkQuery('ztna_server_datagrams_relayed_total{direction="a_to_c"}', catalog)[0]).toMatch(/value not in/);
    expect(checkQuery("ztna_server_handshake_duration_seconds", catalog)[0]).toMatch(/is a histogram/);
    expect(checkQuery("sum by (le) (ztna_server_handshake_duration_seconds_sum)", catalog)).toHaveLength(1);
    expect(checkQuery("sum(rate(x[5m])) by (", catalog)).toHaveLength(1);
  });

  test("open label vocabularies (free-form reasons) are not value-checked", () => {
    expect(checkQuery('ztna_server_drops_total{reason="anything"}', catalog)).toEqual([]);
    expect(checkQuery('ztna_agent_reconnections_total{reason="goaway"}', catalog)).toEqual([]);
  });
});

describe("grafana dashboard", () => {
  test("the committed JSON is exactly what dashboard.ts generates", () => {
    // Edit observability/grafana/dashboard.ts, then: bun observability/grafana/dashboard.ts
    expect(dashboardSource).toBe(dashboardText());
  });

  test("is an importable dashboard with a Prometheus datasource input and variable", () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.uid).toBe("ztna-relay");
    expect(dashboard.__inputs).toContainEqual(
      expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" }),
    );
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", query: "prometheus" }),
    );
    for (const v of dashboard.templating.list.filter((x) => x.type === "query")) {
      expect(v.datasource?.uid).toBe("${DS_PROMETHEUS}");
    }
  });

  test("every panel has the datasource and at least one query; ids and refIds are unique", () => {
    const ids = new Set<number>();
    for (const p of dashboard.panels) {
      expect(ids.has(p.id)).toBe(false);
      ids.add(p.id);
      if (p.type === "row") continue;
      expect(p.datasource).toEqual({ type: "prometheus", uid: "${DS_PROMETHEUS}" });
      expect(p.targets?.length ?? 0).toBeGreaterThan(0);
      const refIds = new Set(p.targets!.map((t) => t.refId));
      expect(refIds.size).toBe(p.targets!.length);
      for (const t of p.targets!) {
        expect(t.datasource?.uid).toBe("${DS_PROMETHEUS}");
        expect(t.expr.trim().length).toBeGreaterThan(0);
      }
    }
  });

  test("panels fit the 24-column grid without overlapping", () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x >= 0 && w > 0 && h > 0 && x + w <= 24).toBe(true);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const key = `${i},${j}`;
          if (cells.has(key)) throw new Error(`panel "${p.title}" overlaps another at ${key}`);
          cells.add(key);
        }
      }
    }
  });

  test("has the server, connector, agent and process rows", () => {
    const rows = dashboard.panels.filter((p) => p.type === "row").map((p) => p.title);
    expect(rows).toEqual(["Server (relay)", "Connector", "Agent", "Processes"]);
  });

  test("every query uses only exported metrics, labels and label values", () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(40);
    expect(problemsOf(queries)).toEqual([]);
  });

  test("exports one variable-free recording rule per query for promtool", () => {
    expect(substituteVariables('rate(x{instance=~"$server", a=~"${agent}"}[$__rate_interval]) [$__range]')).toBe(
      'rate(x{instance=~".*", a=~".*"}[1m]) [1h]',
    );
    const rules =
      (dashboardRules(dashboard) as { groups: { rules: { record: string; expr: string }[] }[] }).groups[0]!.rules;
    expect(rules.length).toBe(dashboard.panels.reduce((n, p) => n + (p.targets?.length ?? 0), 0));
    expect(new Set(rules.map((r) => r.record)).size).toBe(rules.length);
    for (const r of rules) expect(r.expr).not.toContain("$");
  });

  test("every component metric has a panel, and process memory and CPU are shown", () => {
    const used = new Set<string>();
    for (const { expr } of dashboardQueries(dashboard)) {
      for (const s of analyseQuery(expr).selectors) {
        const r = resolveSeries(s.metric, catalog);
        if (typeof r !== "string") used.add(r.family);
      }
    }
    const missing = [...SERVER_METRIC_NAMES, ...CONNECTOR_METRIC_NAMES, ...AGENT_METRIC_NAMES].filter((n) =>
      !used.has(n)
    );
    expect(missing).toEqual([]);
    expect(used.has("ztna_process_resident_memory_bytes")).toBe(true);
    expect(used.has("ztna_process_cpu_seconds_total")).toBe(true);
  });
});

describe("prometheus rules and config", () => {
  const REQUIRED = [
    "ZtnaServerDown",
    "ZtnaConnectorNotRegistered",
    "ZtnaHighDropRate",
    "ZtnaReconnectStorm",
    "ZtnaSourceMismatch",
    "ZtnaServerDraining",
    "ZtnaAgentServiceDown",
  ];

  test("has the required alerts, each with severity, component and annotations", () => {
    const names = new Set(rules.map((r) => r.alert));
    for (const name of REQUIRED) expect(names.has(name)).toBe(true);
    for (const r of rules) {
      expect(["critical", "warning"]).toContain(r.labels?.severity ?? "");
      expect(["server", "connector", "agent"]).toContain(r.labels?.component ?? "");
      expect(r.annotations?.summary?.length ?? 0).toBeGreaterThan(10);
      expect(r.annotations?.description?.length ?? 0).toBeGreaterThan(20);
    }
    // One drop-rate rule per component.
    expect(rules.filter((r) => r.alert === "ZtnaHighDropRate").map((r) => r.labels!.component).sort()).toEqual([
      "agent",
      "connector",
      "server",
    ]);
  });

  test("every rule expression uses only exported metrics, labels and label values", () => {
    expect(problemsOf(rules.map((r) => ({ where: r.alert, expr: r.expr })))).toEqual([]);
  });

  test("up{job=~...} selectors match the example scrape jobs, which scrape the default ops ports", () => {
    const jobs = promConfig.scrape_configs.map((c) => c.job_name);
    expect(jobs).toEqual(["ztna-server", "ztna-connector", "ztna-agent"]);
    expect(promConfig.scrape_configs.map((c) => c.static_configs[0]!.targets[0])).toEqual([
      "127.0.0.1:9090",
      "127.0.0.1:9091",
      "127.0.0.1:9092",
    ]);
    expect(promConfig.rule_files).toEqual(["alerts.yml"]);
    for (const r of rules) {
      for (const s of analyseQuery(r.expr).selectors.filter((x) => x.metric === "up")) {
        const job = s.matchers.find((m) => m.label === "job")!;
        expect(jobs.some((j) => new RegExp(`^(?:${job.value})$`).test(j))).toBe(true);
      }
    }
  });

  test("the promtool unit tests cover every alert, both firing and quiet", () => {
    expect(alertTests.rule_files).toEqual(["alerts.yml"]);
    const cases = alertTests.tests.flatMap((t) => t.alert_rule_test);
    for (const name of new Set(rules.map((r) => r.alert))) {
      const mine = cases.filter((c) => c.alertname === name);
      expect({ name, fires: mine.some((c) => c.exp_alerts.length > 0) }).toEqual({ name, fires: true });
      expect({ name, quiet: mine.some((c) => c.exp_alerts.length === 0) }).toEqual({ name, quiet: true });
    }
  });
});
