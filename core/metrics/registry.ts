// One prom-client Registry per program. Each program owns its registry rather
// than using prom-client's global one, so tests and in-process topologies
// (server + connector + agent in one process) never collide on metric names.
import { registerProcessMetrics } from "./process.ts";
import { Registry } from "./prom.ts";

export type Component = "server" | "connector" | "agent";

export const METRIC_PREFIX = "ztna_";

/**
 * A fresh registry with default process metrics (CPU, RSS, heap, event-loop
 * lag) named `ztna_*`. No default labels: component metric names already carry
 * the component (`ztna_server_*`), and process metrics are per-process anyway.
 * `component` is taken for call-site clarity; it does not change the output.
 */
export function createRegistry(component: Component): Registry {
  void component;
  const register = new Registry();
  registerProcessMetrics(register, METRIC_PREFIX);
  return register;
}
