// Cost of one hot-path counter increment: our plain-number cells vs
// prom-client's own labelled counter. Run: npx bun bench/metrics-cost.ts
import { Counter, Registry } from "prom-client";
import { counterFamily } from "../core/metrics/cells.ts";

type Dir = "agent_to_connector" | "connector_to_agent";

function measure(name: string, iterations: number, body: (n: number) => void): void {
  body(Math.min(iterations, 100_000)); // warm-up, lets the JIT settle
  const t0 = performance.now();
  body(iterations);
  const ns = ((performance.now() - t0) * 1e6) / iterations;
  console.log(`${name.padEnd(52)} ${ns.toFixed(2).padStart(8)} ns/op  (${iterations.toLocaleString("en")} ops)`);
}

const registry = new Registry();
const family = counterFamily<{ direction: Dir }>(registry, "bench_cells_total", "cells", ["direction"]);
const cell = family.child({ direction: "agent_to_connector" });
const labels = { direction: "agent_to_connector" } as const;

const prom = new Counter({
  name: "bench_prom_total",
  help: "prom-client",
  labelNames: ["direction"],
  registers: [registry],
});
const promChild = prom.labels("agent_to_connector");

const N = 20_000_000;
const M = 2_000_000;

console.log(`runtime: ${typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "other"}`);
measure("ours: cell.inc() (cached child)", N, (n) => {
  for (let i = 0; i < n; i++) cell.inc();
});
measure("ours: cell.inc(1200) (bytes, cached child)", N, (n) => {
  for (let i = 0; i < n; i++) cell.inc(1200);
});
measure("ours: family.child(labels).inc() (lookup each call)", M, (n) => {
  for (let i = 0; i < n; i++) family.child(labels).inc();
});
measure("prom-client: counter.labels('…').inc()", M, (n) => {
  for (let i = 0; i < n; i++) prom.labels("agent_to_connector").inc();
});
measure("prom-client: counter.inc({ direction }, 1)", M, (n) => {
  for (let i = 0; i < n; i++) prom.inc(labels, 1);
});
measure("prom-client: labels(…) cached, child.inc()", M, (n) => {
  for (let i = 0; i < n; i++) promChild.inc();
});

// Keep the results observable and show both paths agree at scrape time.
const text = await registry.metrics();
console.log(text.split("\n").filter((l) => l.startsWith("bench_") && !l.startsWith("#")).join("\n"));
