/**
 * `npm run bench`: every row of issue 9 side by side with its anchor, in one
 * run, every party in its own process. Prints the rows and every goal met or
 * not; writes bench/results/<timestamp>.json and bench/results/latest.json.
 * `--help` lists the flags (subsets with --only/--skip, shorter with --quick).
 *
 * Order: the direct services and one tunnel (server, a connector per service,
 * agents A and B, and C behind the impairment proxy) serve rtt, goodput,
 * neighbour, tcp-bulk, tcp-rr and lossy; they
 * are stopped before the scale and abuse rows, which start their own servers.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { evaluateGoals } from "./goals.ts";
import { type BenchConfig, FlagError, parseFlags, type RowName } from "./lib/flags.ts";
import { startBunChain } from "./lib/floor.ts";
import { aborted, mark, stopAll, track, withCleanup } from "./lib/processes.ts";
import { startKvServer, startTcpBulkServer, startUdpEcho, startUdpSink } from "./lib/services.ts";
import { startSshForwards } from "./lib/ssh.ts";
import { type AgentSpec, type ServiceSpec, startTunnel } from "./lib/tunnel.ts";
import { renderReport } from "./report.ts";
import type { BenchResult, Rows } from "./result.ts";
import { runAbuse } from "./rows/abuse.ts";
import { AGENT, type Env, SERVICE } from "./rows/env.ts";
import { runGoodput } from "./rows/goodput.ts";
import { runLossy } from "./rows/lossy.ts";
import { measureBareBun, watchMemory } from "./rows/memory.ts";
import { runNaive } from "./rows/naive.ts";
import { runNeighbour } from "./rows/neighbour.ts";
import { runRtt } from "./rows/rtt.ts";
import { runScale } from "./rows/scale.ts";
import { runTcpBulk, runTcpRr } from "./rows/tcp.ts";

const TUNNEL_ROWS: RowName[] = ["rtt", "goodput", "neighbour", "tcp-bulk", "tcp-rr", "lossy"];
const RUNNERS: Record<RowName, (env: Env) => Promise<Rows[RowName]>> = {
  rtt: runRtt,
  goodput: runGoodput,
  neighbour: runNeighbour,
  "tcp-bulk": runTcpBulk,
  "tcp-rr": runTcpRr,
  lossy: runLossy,
  scale: runScale,
  abuse: runAbuse,
  naive: runNaive,
};

let cfg: BenchConfig;
try {
  cfg = parseFlags(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof FlagError)) throw error;
  console.error(error.message);
  process.exit(error.message.startsWith("usage:") ? 0 : 2);
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
const wants = (...rows: RowName[]) => rows.some((r) => cfg.rows.includes(r));

function sysctl(name: string): number | null {
  try {
    return Number(readFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, "utf8").trim());
  } catch {
    return null;
  }
}

function machine() {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? "unknown",
    bun: Bun.version,
    kernel: release(),
    memTotalMiB: Math.round(totalmem() / 2 ** 20),
    rmemMax: sysctl("net.core.rmem_max"),
    // Other work on the machine skews everything; the report warns about it.
    loadAverageAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** The direct services and the tunnel the selected tunnel rows need. */
async function setUpTunnel(env: Env): Promise<void> {
  const services: ServiceSpec[] = [];
  const maps: AgentSpec["maps"] = [];
  const agents: AgentSpec[] = [{ name: AGENT.a, maps }];
  if (wants("rtt", "neighbour", "lossy")) {
    env.echo = await startUdpEcho();
    services.push({ name: SERVICE.echo, forward: env.echo.address });
    maps.push({ service: SERVICE.echo, proto: "udp" });
  }
  if (wants("goodput", "neighbour")) {
    env.sink = await startUdpSink();
    services.push({ name: SERVICE.sink, forward: env.sink.address });
    maps.push({ service: SERVICE.sink, proto: "udp" });
    if (wants("neighbour")) agents.push({ name: AGENT.b, maps: [{ service: SERVICE.sink, proto: "udp" }] });
  }
  const tcp: Record<string, { host: string; port: number }> = {};
  if (wants("tcp-bulk", "lossy")) {
    env.bulk = await startTcpBulkServer();
    tcp[SERVICE.bulk] = env.bulk.address;
  }
  if (wants("tcp-rr")) {
    env.kv = await startKvServer();
    tcp[SERVICE.kv] = env.kv.address;
  }
  for (const [name, forward] of Object.entries(tcp)) {
    services.push({ name, forward });
    maps.push({ service: name, proto: "tcp" });
  }
  log(`starting the tunnel: server, ${services.length} connectors, ${agents.length} agent(s)`);
  env.tunnel = await startTunnel(env.work, services, agents, env.launch);
  if (wants("neighbour")) {
    log("starting agent B's own tunnel for the neighbour row: a second server and sink connector");
    env.apart = await startTunnel(
      join(env.work, "apart"),
      [{ name: SERVICE.sink, forward: env.sink!.address }],
      [{ name: AGENT.b, maps: [{ service: SERVICE.sink, proto: "udp" }] }],
      env.launch,
    );
  }
  // The Bun floor beside the anchors: a chain of trivial forwarders to the same services.
  env.floor = {};
  if (wants("rtt")) env.floor.echo = await startBunChain("udp", env.echo!.address);
  if (wants("goodput")) env.floor.sink = await startBunChain("udp", env.sink!.address);
  for (const [name, forward] of Object.entries(tcp)) {
    env.floor[name as "bulk" | "kv"] = await startBunChain("tcp", forward);
  }
  if (wants("tcp-bulk", "tcp-rr")) {
    env.ssh = cfg.ssh ? await startSshForwards(join(env.work, "ssh"), tcp) : { skipped: "--no-ssh" };
    if (env.ssh.skipped) log(`ssh -L skipped: ${env.ssh.skipped}`);
  }
}

async function main(): Promise<BenchResult> {
  const startedAt = new Date();
  const work = mkdtempSync(join(tmpdir(), "ztna-bench-"));
  // Registered first, so it is removed last, also when Ctrl-C cuts the run short.
  track({ name: "scratch directory", stop: async () => rmSync(work, { recursive: true, force: true }) });
  const env: Env = { cfg, work, log, launch: { cwd: work, verbose: cfg.verbose, maxUdpPayload: cfg.maxUdpPayload } };
  const rows: Rows = {};
  const errors: Record<string, string> = {};
  const timings: Record<string, number> = {};
  const result: Omit<BenchResult, "durationSeconds"> & { timings: Record<string, number>; shutdown?: unknown } = {
    timestamp: startedAt.toISOString(),
    machine: machine(),
    config: { ...cfg },
    rows,
    errors,
    timings,
  };
  const runRow = async (row: RowName) => {
    if (aborted()) return;
    const t = performance.now();
    try {
      (rows as Record<string, unknown>)[row] = await RUNNERS[row](env);
    } catch (error) {
      errors[row] = (error as Error).message;
      if (!aborted()) log(`${row} failed: ${(error as Error).stack ?? error}`);
    }
    timings[row] = Math.round((performance.now() - t) / 100) / 10;
  };
  if (wants(...TUNNEL_ROWS)) {
    const before = mark();
    const t = performance.now();
    try {
      await setUpTunnel(env);
    } catch (error) {
      for (const row of TUNNEL_ROWS) if (wants(row)) errors[row] = `setup failed: ${(error as Error).message}`;
    }
    timings.setup = Math.round((performance.now() - t) / 100) / 10;
    if (env.tunnel) {
      await Bun.sleep(1_000); // let start-up settle before the idle figures
      const memory = watchMemory(env.tunnel);
      const bareBun = await measureBareBun();
      for (const row of TUNNEL_ROWS) if (wants(row)) await runRow(row);
      result.memory = memory.stop(bareBun);
      result.shutdown = await env.tunnel.stop();
    }
    // Services and ssh too: the later rows measure their own servers on a quiet machine.
    await stopAll(before);
  }
  for (const row of ["scale", "abuse", "naive"] as const) if (wants(row)) await runRow(row);
  result.machine.loadAverageAtEnd = Math.round(loadavg()[0]! * 100) / 100;
  return { ...result, durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10 };
}

// Generous: a full run takes a few minutes; whatever hangs is stopped by then.
const DEADLINE_MS = 15 * 60_000;
const result = await withCleanup(main, DEADLINE_MS);
const goals = evaluateGoals(result);
console.log(renderReport(result, goals));
const dir = join(import.meta.dir, "results");
mkdirSync(dir, { recursive: true });
const json = `${JSON.stringify({ ...result, goals }, null, 2)}\n`;
const file = join(dir, `${result.timestamp.replaceAll(":", "-")}.json`);
writeFileSync(file, json);
writeFileSync(join(dir, "latest.json"), json);
console.log(`results: ${file} (and latest.json)`);
process.exit(Object.keys(result.errors).length > 0 ? 1 : 0);
