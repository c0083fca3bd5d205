/**
 * The TCP rows, each direct, through `ssh -L`, through the Bun floor (a chain
 * of trivial forwarders, bench/lib/floor.ts), and through the tunnel:
 *   bulk: one connection moving bytes for N seconds, upload then download;
 *   request/response: small GETs against the key-value server over 1 and 20
 *   connections, closed loop: requests/s and latency.
 */
import { runOnce } from "../lib/child.ts";
import { FLOOR_NAME } from "../lib/floor.ts";
import { cpuMeter } from "../lib/proc.ts";
import type { LatencySummary } from "../lib/stats.ts";
import { fmt, mbit, rate, table, us } from "../lib/table.ts";
import { type Address, AGENT, type Env, need, round, SERVICE } from "./env.ts";

export type TcpPath = "direct" | "ssh" | "floor" | "tunnel";

/** The paths to a TCP service, in print order; ssh and the Bun floor only when they came up. */
function paths(env: Env, service: "bulk" | "kv"): { path: TcpPath; target: Address }[] {
  const direct = need(env[service], `the ${service} server`).address;
  const out: { path: TcpPath; target: Address }[] = [{ path: "direct", target: direct }];
  const ssh = env.ssh;
  if (ssh && "forwards" in ssh) {
    out.push({ path: "ssh", target: need(ssh.forwards[service], `an ssh -L forward to ${service}`) });
  }
  const floor = env.floor?.[service]?.address;
  if (floor) out.push({ path: "floor", target: floor });
  out.push({ path: "tunnel", target: need(env.tunnel, "the tunnel").listener(AGENT.a, SERVICE[service]) });
  return out;
}

/** CPU of the three programs carrying a tunnel run (server, the service's connector, agent A). */
function tunnelCpu(env: Env, service: "bulk" | "kv") {
  const t = need(env.tunnel, "the tunnel");
  return cpuMeter({
    server: t.pids.server!,
    connector: t.pids[`connector:${SERVICE[service]}`]!,
    agent: t.pids[`agent:${AGENT.a}`]!,
  });
}

const sumCpu = (cpu: Record<string, number | null>) => Object.values(cpu).reduce<number>((a, b) => a + (b ?? 0), 0);

export interface BulkRun {
  path: TcpPath;
  direction: "upload" | "download";
  bytes: number;
  seconds: number;
  mbitPerSecond: number;
  /** Tunnel runs: CPU % of one core per program. */
  cpuPercent?: Record<string, number | null>;
}

export interface BulkResult {
  seconds: number;
  runs: BulkRun[];
  sshSkipped?: string;
}

/** One bulk transfer from its own process; the clock runs until the last byte is in. */
export async function bulkTransfer(name: string, target: Address, direction: "upload" | "download", seconds: number) {
  return (await runOnce(name, "tcp-bulk.ts", [
    "--target",
    `${target.host}:${target.port}`,
    "--direction",
    direction === "upload" ? "up" : "down",
    "--seconds",
    String(seconds),
  ], seconds * 1000 + 60_000)) as { bytes: number; seconds: number; mbitPerSecond: number };
}

export async function runTcpBulk(env: Env): Promise<BulkResult> {
  const { seconds } = env.cfg;
  env.log(`tcp-bulk: one connection, ${seconds} s each way, ${paths(env, "bulk").map((p) => p.path).join(" / ")}`);
  const runs: BulkRun[] = [];
  for (const { path, target } of paths(env, "bulk")) {
    for (const direction of ["upload", "download"] as const) {
      const cpu = path === "tunnel" ? tunnelCpu(env, "bulk") : null;
      const r = await bulkTransfer(`bulk-${path}-${direction}`, target, direction, seconds);
      const run: BulkRun = {
        path,
        direction,
        bytes: r.bytes,
        seconds: round(r.seconds, 3),
        mbitPerSecond: Math.round(r.mbitPerSecond),
      };
      if (cpu) {
        const used = cpu.read();
        run.cpuPercent = Object.fromEntries(
          Object.entries(used.cpu).map(([k, s]) => [k, s === null ? null : Math.round((s / used.seconds) * 100)]),
        );
      }
      runs.push(run);
    }
  }
  return { seconds, runs, ...(env.ssh?.skipped ? { sshSkipped: env.ssh.skipped } : {}) };
}

export interface RrRun {
  path: TcpPath;
  connections: number;
  requests: number;
  requestsPerSecond: number;
  latency: LatencySummary;
  errors: number;
  /** Tunnel runs: CPU µs per request, summed over server, connector and agent. */
  cpuUsPerRequest?: number;
  cpuPercent?: Record<string, number | null>;
}

export interface RrResult {
  seconds: number;
  runs: RrRun[];
  sshSkipped?: string;
}

export async function runTcpRr(env: Env): Promise<RrResult> {
  const { seconds, rrConnections } = env.cfg;
  env.log(
    `tcp-rr: GETs over ${rrConnections.join(" and ")} connections, ${seconds} s each, ${
      paths(env, "kv").map((p) => p.path).join(" / ")
    }`,
  );
  const runs: RrRun[] = [];
  for (const connections of rrConnections) {
    for (const { path, target } of paths(env, "kv")) {
      const cpu = path === "tunnel" ? tunnelCpu(env, "kv") : null;
      const r = (await runOnce(`rr-${path}-${connections}`, "kv-load.ts", [
        "--target",
        `${target.host}:${target.port}`,
        "--connections",
        String(connections),
        "--seconds",
        String(seconds),
      ], seconds * 1000 + 30_000)) as {
        requests: number;
        requestsPerSecond: number;
        latency: LatencySummary;
        errors: number;
      };
      const run: RrRun = {
        path,
        connections,
        requests: r.requests,
        requestsPerSecond: Math.round(r.requestsPerSecond),
        latency: r.latency,
        errors: r.errors,
      };
      if (cpu) {
        const used = cpu.read();
        run.cpuPercent = Object.fromEntries(
          Object.entries(used.cpu).map(([k, s]) => [k, s === null ? null : Math.round((s / used.seconds) * 100)]),
        );
        // The meter also spans the load's warm-up and shutdown: a slight overestimate.
        run.cpuUsPerRequest = r.requests ? Math.round((sumCpu(used.cpu) * 1e6) / r.requests) : undefined;
      }
      runs.push(run);
    }
  }
  return { seconds, runs, ...(env.ssh?.skipped ? { sshSkipped: env.ssh.skipped } : {}) };
}

const pathName = (p: TcpPath) => (p === "ssh" ? "ssh -L" : p === "floor" ? FLOOR_NAME : p);

const cpuCell = (
  c?: Record<string, number | null>,
) => (c ? `${fmt(c.server)} / ${fmt(c.connector)} / ${fmt(c.agent)}` : "");

export function renderTcpBulk(b: BulkResult): string[] {
  const rows = [["path", "direction", "throughput", "CPU % srv/conn/agent"]];
  for (const r of b.runs) {
    rows.push([pathName(r.path), r.direction, mbit(r.mbitPerSecond), cpuCell(r.cpuPercent)]);
  }
  const out = [`TCP bulk, one connection, ${b.seconds} s each way`, ...table(rows, "llrr")];
  if (b.sshSkipped) out.push(`  ssh -L skipped: ${b.sshSkipped}`);
  return out;
}

export function renderTcpRr(r: RrResult): string[] {
  const rows = [[
    "connections",
    "path",
    "req/s",
    "p50",
    "p99",
    "errors",
    "CPU µs/req (3 programs)",
    "CPU % srv/conn/agent",
  ]];
  for (const x of r.runs) {
    rows.push([
      String(x.connections),
      pathName(x.path),
      rate(x.requestsPerSecond),
      us(x.latency.p50),
      us(x.latency.p99),
      fmt(x.errors),
      fmt(x.cpuUsPerRequest),
      cpuCell(x.cpuPercent),
    ]);
  }
  const out = [
    `TCP request/response (GET of a 128 B value, closed loop), ${r.seconds} s each`,
    ...table(rows, "rlrrrrrr"),
  ];
  if (r.sshSkipped) out.push(`  ssh -L skipped: ${r.sshSkipped}`);
  return out;
}
