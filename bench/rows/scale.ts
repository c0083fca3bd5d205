/**
 * The scale row: one server with its defaults, and one load process
 * (tools/quic-swarm.ts, the engine as many clients) that ramps to 1k, 5k and
 * 10k registered agents. Per step: handshakes/s, the server's RSS and CPU.
 * Handshake + registration latency is probed one dial at a time, before the
 * ramp (low load) and again at the top. At the top, idle CPU with the
 * default keepalive.
 */
import { join } from "node:path";
import { spawnBenchChild } from "../lib/child.ts";
import { cpuMeter, MiB, readMemory } from "../lib/proc.ts";
import type { LatencySummary } from "../lib/stats.ts";
import { fmt, mib, pct, rate, table, us } from "../lib/table.ts";
import { formatAddress } from "../../core/net/address.ts";
import { startServer } from "../lib/tunnel.ts";
import { type Env, round } from "./env.ts";

export interface ScaleStep {
  /** Agents asked for; `agents` is how many were up when the step ended (short of it when out of time). */
  target: number;
  agents: number;
  added: number;
  failed: number;
  reasons: Record<string, number>;
  seconds: number;
  handshakesPerSecond: number;
  /** Dial to WELCOME during the ramp (64 in flight). */
  latency: LatencySummary;
  serverRssMiB: number | null;
  serverCpuPercent: number | null;
  /** The load process: if it is the one at 100 %, handshakes/s measures it, not the server. */
  swarmCpuPercent: number | null;
  swarmRssMiB: number | null;
}

export interface ScaleResult {
  keepaliveMs: number;
  serverIdleRssMiB: number | null;
  /** Dial to WELCOME one at a time: on an empty server, and at the top of the ramp. */
  probeLowLoad: LatencySummary;
  probeAtTop: LatencySummary | null;
  steps: ScaleStep[];
  idle: {
    agents: number;
    lost: number;
    seconds: number;
    serverCpuPercent: number | null;
    swarmCpuPercent: number | null;
    serverRssMiB: number | null;
  } | null;
}

const PROBES = 100;
/** Dials before the low-load probe that are not counted: the server's handshake path is compiled by then. */
const PROBE_WARMUP = 50;
/**
 * All ramp steps together get this long: on a machine too busy to keep up,
 * the row reports how far it got instead of taking many minutes.
 */
const RAMP_BUDGET_MS = 120_000;

const percentOf = (
  cpuSeconds: number | null | undefined,
  seconds: number,
) => (cpuSeconds == null ? null : Math.round((cpuSeconds / seconds) * 100));

export async function runScale(env: Env): Promise<ScaleResult> {
  const { scaleSteps, seconds } = env.cfg;
  env.log(`scale: ramping to ${scaleSteps.join(", ")} agent connections`);
  const server = await startServer(join(env.work, "scale-state"), env.launch);
  await Bun.sleep(500);
  const rss = (pid: number) => {
    const m = readMemory(pid);
    return m ? round(m.rss / MiB) : null;
  };
  const serverIdleRssMiB = rss(server.program.pid);
  const swarm = spawnBenchChild("quic-swarm", "quic-swarm.ts", [
    "--target",
    formatAddress(server.address),
    "--ca",
    server.caPath,
  ]);
  const ready = (await swarm.next(20_000)) as { keepaliveMs: number };
  const ask = async (command: string, timeoutMs: number) => {
    swarm.send(command);
    const r = await swarm.next(timeoutMs);
    if ("error" in r) throw new Error(`quic-swarm: ${r.error}`);
    return r;
  };

  const probeLowLoad = ((await ask(`probe ${PROBES} ${PROBE_WARMUP}`, 60_000)) as { latency: LatencySummary }).latency;
  const steps: ScaleStep[] = [];
  const rampDeadline = performance.now() + RAMP_BUDGET_MS;
  for (const n of scaleSteps) {
    const budget = Math.round(rampDeadline - performance.now());
    if (budget <= 0) break;
    const cpu = cpuMeter({ server: server.program.pid, swarm: swarm.pid });
    const r = (await ask(`ramp ${n} ${budget}`, budget + 30_000)) as {
      agents: number;
      outOfTime: boolean;
      added: number;
      failed: number;
      reasons: Record<string, number>;
      seconds: number;
      perSecond: number;
      latency: LatencySummary;
    };
    const used = cpu.read();
    steps.push({
      target: n,
      agents: r.agents,
      added: r.added,
      failed: r.failed,
      reasons: r.reasons,
      seconds: round(r.seconds, 2),
      handshakesPerSecond: Math.round(r.perSecond),
      latency: r.latency,
      serverRssMiB: rss(server.program.pid),
      serverCpuPercent: percentOf(used.cpu.server, used.seconds),
      swarmCpuPercent: percentOf(used.cpu.swarm, used.seconds),
      swarmRssMiB: rss(swarm.pid),
    });
    env.log(`scale: ${r.agents} agents (${Math.round(r.perSecond)} handshakes/s, ${r.failed} failed)`);
    if (r.outOfTime) {
      env.log(`scale: out of the ${RAMP_BUDGET_MS / 1000} s ramp budget at ${r.agents} agents`);
      break;
    }
  }

  // Idle at the top: nothing but keepalives, after a moment to settle.
  await Bun.sleep(2_000);
  const idleSeconds = Math.max(3, seconds);
  const cpu = cpuMeter({ server: server.program.pid, swarm: swarm.pid });
  await Bun.sleep(idleSeconds * 1000);
  const used = cpu.read();
  const count = (await ask("count", 10_000)) as { agents: number; lost: number };
  const idle = {
    agents: count.agents,
    lost: count.lost,
    seconds: round(used.seconds, 2),
    serverCpuPercent: percentOf(used.cpu.server, used.seconds),
    swarmCpuPercent: percentOf(used.cpu.swarm, used.seconds),
    serverRssMiB: rss(server.program.pid),
  };
  const probeAtTop = ((await ask(`probe ${Math.round(PROBES / 2)}`, 60_000)) as { latency: LatencySummary }).latency;
  await swarm.stop();
  await server.program.stop("SIGTERM", 5_000);
  return { keepaliveMs: ready.keepaliveMs, serverIdleRssMiB, probeLowLoad, probeAtTop, steps, idle };
}

export function renderScale(s: ScaleResult): string[] {
  const rows = [[
    "agents",
    "handshakes/s",
    "p50 / p99 during ramp",
    "failed",
    "server RSS",
    "CPU in ramp: server / load",
    "load process RSS",
  ]];
  for (const x of s.steps) {
    rows.push([
      fmt(x.agents),
      rate(x.handshakesPerSecond),
      `${us(x.latency.p50)} / ${us(x.latency.p99)}`,
      fmt(x.failed),
      mib(x.serverRssMiB),
      `${pct(x.serverCpuPercent, 0)} / ${pct(x.swarmCpuPercent, 0)}`,
      mib(x.swarmRssMiB),
    ]);
  }
  const out = [
    `Scale: agent connections to one server (handshake + HELLO/WELCOME), keepalive ${s.keepaliveMs} ms, server idle ${
      mib(s.serverIdleRssMiB)
    }`,
    ...table(rows, "rrrrrrr"),
  ];
  const short = s.steps.find((x) => x.agents < x.target);
  if (short) {
    out.push(
      `  ramp ran out of its ${RAMP_BUDGET_MS / 1000} s budget at ${fmt(short.agents)} of ${fmt(short.target)} agents`,
    );
  }
  out.push(
    `  one dial at a time: p50 ${us(s.probeLowLoad.p50)} (p99 ${
      us(s.probeLowLoad.p99)
    }) on an empty server (after ${PROBE_WARMUP} uncounted)` +
      (s.probeAtTop ? `, p50 ${us(s.probeAtTop.p50)} (p99 ${us(s.probeAtTop.p99)}) at the top` : ""),
  );
  if (s.idle) {
    out.push(
      `  idle at ${fmt(s.idle.agents)} agents for ${s.idle.seconds} s: server CPU ${
        pct(s.idle.serverCpuPercent, 0)
      }, load process CPU ${pct(s.idle.swarmCpuPercent, 0)}, server RSS ${mib(s.idle.serverRssMiB)}, ${
        fmt(s.idle.lost)
      } agents lost`,
    );
  }
  const failed: Record<string, number> = {};
  for (const x of s.steps) for (const [k, v] of Object.entries(x.reasons)) failed[k] = (failed[k] ?? 0) + v;
  const reasons = Object.entries(failed).map(([k, v]) => `${k}=${v}`).join(" ");
  if (reasons) out.push(`  failed dials: ${reasons}`);
  return out;
}
