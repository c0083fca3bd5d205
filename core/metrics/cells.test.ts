import { describe, expect, test } from "bun:test";
import { Counter, Registry } from "prom-client";
import { computedGauge, counter, counterFamily, each, gauge, gaugeFamily, preset } from "./cells.ts";
import { histogram } from "./histogram.ts";
import { createRegistry } from "./registry.ts";

describe("counterFamily", () => {
  test("cells are plain numbers read at scrape time", async () => {
    const reg = new Registry();
    const fam = counterFamily<{ direction: string }>(reg, "x_total", "help x", ["direction"]);
    const a = fam.child({ direction: "in" });
    const b = fam.child({ direction: "out" });
    a.inc();
    a.inc(41);
    b.inc(7);
    expect(a.value).toBe(42);
    const text = await reg.metrics();
    expect(text).toContain("# HELP x_total help x");
    expect(text).toContain("# TYPE x_total counter");
    expect(text).toContain('x_total{direction="in"} 42');
    expect(text).toContain('x_total{direction="out"} 7');
  });

  test("child() returns the same cell for the same labels, whatever the key order", () => {
    const fam = counterFamily<{ a: string; b: string }>(new Registry(), "y_total", "h", ["a", "b"]);
    const c = fam.child({ a: "1", b: "2" });
    expect(fam.child({ b: "2", a: "1" })).toBe(c);
    expect(fam.child({ a: "1", b: "3" })).not.toBe(c);
  });

  test("values keep growing across scrapes (no double counting)", async () => {
    const reg = new Registry();
    const c = counterFamily<{ k: string }>(reg, "z_total", "h", ["k"]).child({ k: "v" });
    c.inc(3);
    await reg.metrics();
    c.inc(2);
    expect(await reg.metrics()).toContain('z_total{k="v"} 5');
  });

  test("remove() drops the series; a missing label throws", async () => {
    const reg = new Registry();
    const fam = counterFamily<{ svc: string }>(reg, "r_total", "h", ["svc"]);
    fam.child({ svc: "gone" }).inc();
    fam.child({ svc: "kept" }).inc();
    fam.remove({ svc: "gone" });
    const text = await reg.metrics();
    expect(text).not.toContain('svc="gone"');
    expect(text).toContain('r_total{svc="kept"} 1');
    expect(() => fam.child({} as { svc: string })).toThrow(/missing label "svc"/);
  });

  test("label values are escaped by prom-client", async () => {
    const reg = new Registry();
    counterFamily<{ s: string }>(reg, "e_total", "h", ["s"]).child({ s: 'a"b\\c' }).inc();
    expect(await reg.metrics()).toContain('e_total{s="a\\"b\\\\c"} 1');
  });

  test("a negative cell is skipped instead of failing the scrape", async () => {
    const reg = new Registry();
    const fam = counterFamily<{ k: string }>(reg, "n_total", "h", ["k"]);
    fam.child({ k: "bad" }).inc(-1);
    fam.child({ k: "good" }).inc(2);
    const text = await reg.metrics();
    expect(text).toContain('n_total{k="good"} 2');
    expect(text).not.toContain('k="bad"');
  });

  test("preset() exports series at 0 before first use", async () => {
    const reg = new Registry();
    preset(counterFamily<{ d: "up" | "down" }>(reg, "p_total", "h", ["d"]), each("d", ["up", "down"] as const));
    const text = await reg.metrics();
    expect(text).toContain('p_total{d="up"} 0');
    expect(text).toContain('p_total{d="down"} 0');
  });
});

describe("gauges, unlabelled cells, histograms", () => {
  test("gaugeFamily cells set/inc/dec", async () => {
    const reg = new Registry();
    const g = gaugeFamily<{ server: string }>(reg, "g", "h", ["server"]).child({ server: "s1:4433" });
    g.set(5);
    g.inc();
    g.dec(3);
    g.inc(0.5);
    const text = await reg.metrics();
    expect(text).toContain("# TYPE g gauge");
    expect(text).toContain('g{server="s1:4433"} 3.5');
  });

  test("unlabelled counter and gauge are bare cells", async () => {
    const reg = new Registry();
    const c = counter(reg, "c_total", "h");
    const g = gauge(reg, "gg", "h");
    expect(await reg.metrics()).toContain("c_total 0");
    c.inc();
    c.inc();
    g.set(1);
    const text = await reg.metrics();
    expect(text).toContain("c_total 2");
    expect(text).toContain("gg 1");
  });

  test("computedGauge reads its value at scrape time", async () => {
    const reg = new Registry();
    let v = 1;
    computedGauge(reg, "cg", "h", () => v);
    expect(await reg.metrics()).toContain("cg 1");
    v = 9;
    expect(await reg.metrics()).toContain("cg 9");
  });

  test("histogram uses latency buckets from 100µs to 5s", async () => {
    const reg = new Registry();
    const h = histogram(reg, "lat_seconds", "h");
    h.observe(0.003);
    const text = await reg.metrics();
    expect(text).toContain('lat_seconds_bucket{le="0.0001"} 0');
    expect(text).toContain('lat_seconds_bucket{le="0.005"} 1');
    expect(text).toContain('lat_seconds_bucket{le="5"} 1');
    expect(text).toContain("lat_seconds_count 1");
  });
});

describe("createRegistry", () => {
  test("has ztna_ process metrics, no default labels, and is not the global registry", async () => {
    const reg = createRegistry("server");
    const text = await reg.metrics();
    expect(text).toContain("ztna_process_cpu_user_seconds_total");
    expect(text).toContain("ztna_process_resident_memory_bytes");
    expect(text).toMatch(/^ztna_process_cpu_user_seconds_total [0-9.e+-]+$/m);
    // Two registries can hold the same metric names independently.
    const other = createRegistry("agent");
    counter(reg, "ztna_test_total", "h").inc();
    counter(other, "ztna_test_total", "h");
    expect(await reg.metrics()).toContain("ztna_test_total 1");
    expect(await other.metrics()).toContain("ztna_test_total 0");
  });

  test("splits the resident memory into its private part and its mapped files", async () => {
    const text = await createRegistry("server").metrics();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    const rss = value("ztna_process_resident_memory_bytes");
    const anon = value("ztna_process_resident_memory_anon_bytes");
    const file = value("ztna_process_resident_memory_file_bytes");
    // A Bun process maps tens of MiB of its own code, and holds a JS heap besides.
    expect(anon).toBeGreaterThan(1 << 20);
    expect(file).toBeGreaterThan(1 << 20);
    // Read a moment apart from the total (and /proc/self/status leaves out shared memory): within 10 %.
    expect(Math.abs(anon + file - rss)).toBeLessThan(rss * 0.1);
  });

  test("prom-client reference counter still works alongside (sanity for the bench)", async () => {
    const reg = new Registry();
    const c = new Counter({ name: "ref_total", help: "h", labelNames: ["d"], registers: [reg] });
    c.labels("a").inc();
    expect(await reg.metrics()).toContain('ref_total{d="a"} 1');
  });
});
