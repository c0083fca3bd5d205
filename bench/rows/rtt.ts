/**
 * UDP echo round trips of 64 B, direct and through the tunnel: back to back
 * (the next probe leaves when the answer is in) and sparse (one probe every
 * 5 ms, so every process on the path has gone idle and must wake up).
 */
import { runOnce } from "../lib/child.ts";
import type { LatencySummary } from "../lib/stats.ts";
import { FLOOR_NAME } from "../lib/floor.ts";
import { fmt, table, us } from "../lib/table.ts";
import { type Address, AGENT, type Env, need, SERVICE } from "./env.ts";

export type Rtt = LatencySummary & { lost: number };

export interface RttResult {
  direct: { backToBack: Rtt; sparse: Rtt };
  tunnel: { backToBack: Rtt; sparse: Rtt };
  /** The same echo through a chain of trivial Bun forwarders (bench/lib/floor.ts), when it ran. */
  floor?: { backToBack: Rtt; sparse: Rtt };
  sparseIntervalMs: number;
}

/**
 * Round trips to the echo at `target`; sparse when `intervalMs` > 0. A probe
 * unanswered after `timeoutMs` counts as lost.
 */
export async function probeRtt(
  name: string,
  target: Address,
  count: number,
  warmup: number,
  intervalMs = 0,
  timeoutMs = 1_000,
): Promise<Rtt> {
  const budgetMs = Math.max(30_000, (count + warmup) * (intervalMs + 2) * 2);
  const args = [
    "--mode",
    "rtt",
    "--target",
    `${target.host}:${target.port}`,
    "--count",
    String(count),
    "--warmup",
    String(warmup),
    "--size",
    "64",
    "--interval-ms",
    String(intervalMs),
    "--budget-ms",
    String(budgetMs),
    "--timeout-ms",
    String(timeoutMs),
  ];
  return (await runOnce(name, "udp-load.ts", args, budgetMs + 15_000)) as unknown as Rtt;
}

export async function runRtt(env: Env): Promise<RttResult> {
  const { rttCount, warmup, sparseCount, sparseIntervalMs } = env.cfg;
  const direct = need(env.echo, "the UDP echo").address;
  const tunnel = need(env.tunnel, "the tunnel").listener(AGENT.a, SERVICE.echo);
  const floor = env.floor?.echo?.address;
  const sparseWarmup = 20;
  env.log(
    `rtt: ${rttCount} back to back, ${sparseCount} sparse (every ${sparseIntervalMs} ms), direct, ${
      floor ? `${FLOOR_NAME}, ` : ""
    }tunnel`,
  );
  return {
    direct: {
      backToBack: await probeRtt("rtt-direct", direct, rttCount, warmup),
      sparse: await probeRtt("rtt-direct-sparse", direct, sparseCount, sparseWarmup, sparseIntervalMs),
    },
    tunnel: {
      backToBack: await probeRtt("rtt-tunnel", tunnel, rttCount, warmup),
      sparse: await probeRtt("rtt-tunnel-sparse", tunnel, sparseCount, sparseWarmup, sparseIntervalMs),
    },
    ...(floor
      ? {
        floor: {
          backToBack: await probeRtt("rtt-floor", floor, rttCount, warmup),
          sparse: await probeRtt("rtt-floor-sparse", floor, sparseCount, sparseWarmup, sparseIntervalMs),
        },
      }
      : {}),
    sparseIntervalMs,
  };
}

export function renderRtt(r: RttResult): string[] {
  const row = (path: string, kind: string, x: Rtt) => [path, kind, us(x.p50), us(x.p99), us(x.max), fmt(x.lost)];
  const ratio = (a: number, b: number) => `${fmt(a / b, 1)}×`;
  const sparse = `one every ${r.sparseIntervalMs} ms`;
  const rows = [
    ["path", "pattern", "p50", "p99", "max", "lost"],
    row("direct", "back to back", r.direct.backToBack),
    ...(r.floor ? [row(FLOOR_NAME, "back to back", r.floor.backToBack)] : []),
    row("tunnel", "back to back", r.tunnel.backToBack),
    row("direct", sparse, r.direct.sparse),
    ...(r.floor ? [row(FLOOR_NAME, sparse, r.floor.sparse)] : []),
    row("tunnel", sparse, r.tunnel.sparse),
  ];
  const out = [
    "UDP echo round trip, 64 B",
    ...table(rows, "llrrrr"),
    `  tunnel / direct p50: ${ratio(r.tunnel.backToBack.p50, r.direct.backToBack.p50)} back to back, ${
      ratio(r.tunnel.sparse.p50, r.direct.sparse.p50)
    } sparse`,
  ];
  if (r.floor) {
    out.push(
      `  tunnel / ${FLOOR_NAME} p50: ${ratio(r.tunnel.backToBack.p50, r.floor.backToBack.p50)} back to back, ${
        ratio(r.tunnel.sparse.p50, r.floor.sparse.p50)
      } sparse`,
    );
  }
  return out;
}
