/**
 * `npm run bench`: direct UDP vs. the tunnel vs. a naive @matrixai/quic echo,
 * every party in its own process (a sender sharing an event loop with its
 * receiver starves one of them). Prints a table and writes
 * bench/results/<timestamp>.json and bench/results/latest.json.
 *
 * Flags: --seconds N (per goodput row, default 5), --count N (round trips,
 * default 5000), --rates 25000,50000,... (0 = full speed), --skip-naive,
 * --verbose (echo the programs' logs).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { ensureDevCertificates } from "../core/certs.ts";
import { addressOf, portOfUrl, spawnProgram, type Program } from "../scripts/programs.ts";
import { spawnBenchChild, type BenchChild } from "./child.ts";
import { printReport, type BenchResult, type GoodputRow } from "./report.ts";
import { readCpuSeconds, readMemory, startRssSampler } from "./rss.ts";
import { delta, hops, scrape } from "./scrape.ts";
import { udpDrops } from "./udp-drops.ts";
import type { LatencySummary } from "./stats.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : fallback;
};
const SECONDS = Number(opt("seconds", "5"));
const COUNT = Number(opt("count", "5000"));
const WARMUP = 500;
const RATES = opt("rates", "25000,50000,75000,100000,0").split(",").map(Number);
const DATAGRAM = 1200;
const NAIVE_BYTES = 16 << 20;
const verbose = argv.includes("--verbose");
const skipNaive = argv.includes("--skip-naive");
// The whole run is bounded: whatever hangs, everything is killed by then.
const DEADLINE_MS = 175_000;

const startedAt = new Date();
const work = mkdtempSync(join(tmpdir(), "ztna-bench-"));
const children: BenchChild[] = [];
const programs: Program[] = [];

function child(name: string, script: string, args: string[]): BenchChild {
  const c = spawnBenchChild(name, script, args);
  children.push(c);
  return c;
}

/** Runs a one-shot bench child and returns its single report. */
async function once(name: string, script: string, args: string[], timeoutMs: number) {
  const c = child(name, script, args);
  try {
    return await c.next(timeoutMs);
  } finally {
    await c.stop();
  }
}

async function teardown(): Promise<void> {
  await Promise.allSettled(programs.map((p) => p.stop("SIGTERM", 3_000)));
  await Promise.allSettled(children.map((c) => c.stop(1_000)));
  rmSync(work, { recursive: true, force: true });
}

function sysctl(name: string): number | null {
  try {
    return Number(readFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, "utf8").trim());
  } catch {
    return null;
  }
}

async function rtt(name: string, target: string, timeoutMs = 60_000): Promise<LatencySummary & { lost: number }> {
  const r = await once(name, "udp-load.ts", ["--mode", "rtt", "--target", target, "--count", String(COUNT), "--warmup", String(WARMUP), "--size", "64"], timeoutMs);
  return r as unknown as LatencySummary & { lost: number };
}

interface Watched {
  pids: Record<string, number>;
  opsPorts: number[];
}

/** One goodput row: sink reset, a sender process for SECONDS, drain, count. */
async function goodputRow(sink: BenchChild, target: string, rate: number, watched?: Watched): Promise<GoodputRow> {
  sink.send("reset");
  const before = watched ? await Promise.all(watched.opsPorts.map((p) => scrape(p))) : [];
  // Kernel receive-buffer drops of the sink and, through the tunnel, of each program.
  const dropPids: Record<string, number> = { ...watched?.pids, sink: sink.pid };
  const drops0 = Object.fromEntries(Object.entries(dropPids).map(([n, pid]) => [n, udpDrops(pid)]));
  const cpu0 = watched ? Object.fromEntries(Object.entries(watched.pids).map(([n, pid]) => [n, readCpuSeconds(pid)])) : {};
  const t0 = performance.now();
  const sent = (await once(`sender@${rate || "max"}`, "udp-load.ts", [
    "--mode", "blast", "--target", target, "--size", String(DATAGRAM), "--seconds", String(SECONDS), "--rate", String(rate),
  ], SECONDS * 1000 + 15_000)) as { sent: number; refused: number; seconds: number };
  // What the sink holds when the sender stops; the rest was queued in between.
  sink.send("count");
  const atStop = (await sink.next(2_000)) as { datagrams: number };
  // Drain: wait until the sink has been idle for 500 ms (at most 3 s).
  const drainStart = performance.now();
  let counted = { datagrams: 0, idleMs: 0 };
  while (true) {
    sink.send("count");
    counted = (await sink.next(2_000)) as typeof counted;
    if (counted.idleMs >= 500 || performance.now() - drainStart > 3_000) break;
    await Bun.sleep(100);
  }
  const wall = (performance.now() - t0) / 1000;
  const row: GoodputRow = {
    targetRate: rate,
    offered: sent.sent,
    refused: sent.refused,
    offeredPerSecond: Math.round(sent.sent / sent.seconds),
    delivered: counted.datagrams,
    deliveredPerSecond: Math.round(counted.datagrams / sent.seconds),
    mbitPerSecond: Math.round(((counted.datagrams * DATAGRAM * 8) / sent.seconds / 1e6) * 10) / 10,
    lossPercent: sent.sent ? Math.round((1 - counted.datagrams / sent.sent) * 10_000) / 100 : 0,
    seconds: Math.round(sent.seconds * 1000) / 1000,
    drainMs: Math.round(performance.now() - drainStart),
    deliveredAfterStop: counted.datagrams - atStop.datagrams,
    kernelDrops: Object.fromEntries(
      Object.entries(dropPids).map(([n, pid]) => {
        const d1 = udpDrops(pid);
        const d0 = drops0[n];
        return [n, d1 === null || d0 == null ? null : d1 - d0];
      }),
    ),
  };
  if (watched) {
    const after = await Promise.all(watched.opsPorts.map((p) => scrape(p)));
    const changes = Object.assign({}, ...after.map((a, i) => delta(before[i]!, a)));
    row.hops = hops(changes);
    row.cpuPercent = {};
    row.rssMiB = {};
    for (const [name, pid] of Object.entries(watched.pids)) {
      const c1 = readCpuSeconds(pid);
      const c0 = cpu0[name];
      row.cpuPercent[name] = c1 === null || c0 == null ? null : Math.round(((c1 - c0) / wall) * 100);
      const m = readMemory(pid);
      row.rssMiB[name] = m ? Math.round((m.rss / 2 ** 20) * 10) / 10 : null;
    }
  }
  await Bun.sleep(500); // let queues settle before the next row
  return row;
}

async function directPhase(echoPort: number, sink: BenchChild, sinkPort: number) {
  const rttResult = await rtt("direct-rtt", `127.0.0.1:${echoPort}`);
  const goodput: GoodputRow[] = [];
  for (const rate of RATES) goodput.push(await goodputRow(sink, `127.0.0.1:${sinkPort}`, rate));
  return { rtt: rttResult, goodput };
}

async function tunnelPhase(echoPort: number, sink: BenchChild, sinkPort: number) {
  const stateDir = join(work, "state");
  const common = { cwd: work, echo: verbose };
  // Like a deployed server: its certificate given with --cert/--key (a server
  // that makes its own development CA also carries the issuing library).
  const dev = await ensureDevCertificates(stateDir);
  const server = spawnProgram(
    "server",
    ["--listen", "127.0.0.1:0", "--ops", "127.0.0.1:0", "--state-dir", stateDir, "--grace", "1s", "--cert", dev.certPath, "--key", dev.keyPath],
    common,
  );
  programs.push(server);
  const serverAddr = addressOf(await server.waitForLog("listening", 20_000));
  const serverOps = portOfUrl(await server.waitForLog("ops_listening"));
  const tls = ["--server", `127.0.0.1:${serverAddr.port}`, "--server-name", "localhost", "--ca", join(stateDir, "ca.pem"), "--state-dir", stateDir, "--ops", "127.0.0.1:0", "--grace", "1s"];
  const connectorEcho = spawnProgram("connector", [...tls, "--service", "echo", "--forward", `127.0.0.1:${echoPort}`], common);
  const connectorSink = spawnProgram("connector", [...tls, "--service", "sink", "--forward", `127.0.0.1:${sinkPort}`], common);
  const agent = spawnProgram("agent", [...tls, "--map", "echo=udp://127.0.0.1:0,sink=udp://127.0.0.1:0"], common);
  programs.push(connectorEcho, connectorSink, agent);
  await Promise.all([connectorEcho.waitForLog("registered", 20_000), connectorSink.waitForLog("registered", 20_000)]);
  const listener = async (service: string) => {
    await agent.waitForLog("service_opened", 20_000, (e) => e.service === service);
    const a = addressOf(await agent.waitForLog("listening", 20_000, (e) => e.service === service));
    return `${a.host}:${a.port}`;
  };
  const [echoVia, sinkVia] = [await listener("echo"), await listener("sink")];
  const watched: Watched = {
    pids: { server: server.pid, connector: connectorSink.pid, agent: agent.pid },
    opsPorts: [
      serverOps,
      portOfUrl(await connectorSink.waitForLog("ops_listening")),
      portOfUrl(await agent.waitForLog("ops_listening")),
    ],
  };
  const sampler = startRssSampler({ ...watched.pids, connectorEcho: connectorEcho.pid });
  const idleRss = Object.fromEntries(Object.entries(watched.pids).map(([n, pid]) => [n, readMemory(pid)?.rss ?? null]));

  const rttResult = await rtt("tunnel-rtt", echoVia);
  const goodput: GoodputRow[] = [];
  for (const rate of RATES) goodput.push(await goodputRow(sink, sinkVia, rate, watched));
  // A last RTT after the load: a relay that stays slow after a burst shows here.
  const rttAfterLoad = await rtt("tunnel-rtt-after", echoVia);
  const rss = sampler.stop();

  // Clients first, then the server, so each exit code reflects its own shutdown.
  const shutdown: Record<string, { exitCode: number; ms: number; lastLogs?: unknown[] }> = {};
  const order: [string, Program][] = [["agent", agent], ["connectorEcho", connectorEcho], ["connectorSink", connectorSink], ["server", server]];
  for (const [name, p] of order) {
    const t = performance.now();
    const exitCode = await p.stop("SIGTERM", 5_000);
    shutdown[name] = { exitCode, ms: Math.round(performance.now() - t) };
    if (exitCode !== 0) shutdown[name].lastLogs = p.logs.slice(-5);
  }
  return { rtt: rttResult, rttAfterLoad, goodput, rss, idleRss, shutdown };
}

async function naivePhase(budgetMs: number) {
  const certs = await ensureDevCertificates(join(work, "naive"));
  const server = child("naive-server", "naive-quic.ts", ["--mode", "server", "--cert", certs.certPath, "--key", certs.keyPath]);
  const { port } = (await server.next(15_000)) as { port: number };
  const rssBefore = readMemory(server.pid);
  const result = await once("naive-client", "naive-quic.ts", [
    "--mode", "client", "--target", `127.0.0.1:${port}`, "--count", String(COUNT), "--warmup", String(WARMUP),
    "--bytes", String(NAIVE_BYTES), "--budget-ms", String(budgetMs),
  ], 2 * budgetMs + 20_000);
  const serverRss = readMemory(server.pid);
  await server.stop();
  return { ...(result as object), serverRssMiB: serverRss ? serverRss.hwm / 2 ** 20 : null, serverIdleRssMiB: rssBefore ? rssBefore.rss / 2 ** 20 : null };
}

async function main(): Promise<BenchResult> {
  const echo = child("echo", "echo-server.ts", []);
  const sink = child("sink", "udp-sink.ts", []);
  const { port: echoPort } = (await echo.next(10_000)) as { port: number };
  const { port: sinkPort, recvBuffer } = (await sink.next(10_000)) as { port: number; recvBuffer: number };

  const cpu = cpus();
  const machine = {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? "unknown",
    bun: Bun.version,
    kernel: release(),
    memTotalMiB: Math.round(totalmem() / 2 ** 20),
    rmemDefault: sysctl("net.core.rmem_default"),
    rmemMax: sysctl("net.core.rmem_max"),
    sinkRecvBuffer: recvBuffer,
    // Other work on the machine skews everything; the report warns about it.
    loadAverageAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
  const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
  log(`direct UDP (${COUNT} round trips, ${RATES.length} goodput rows of ${SECONDS} s)`);
  const direct = await directPhase(echoPort, sink, sinkPort);
  log("through the tunnel");
  const tunnel = await tunnelPhase(echoPort, sink, sinkPort);
  let naive: BenchResult["naive"] = { skipped: true };
  if (!skipNaive) {
    log("naive @matrixai/quic streams");
    try {
      // The client spends at most budgetMs on RTT and again on goodput.
      const left = DEADLINE_MS - (Date.now() - startedAt.getTime()) - 30_000;
      naive = await naivePhase(Math.max(3_000, Math.min(20_000, left / 2)));
    } catch (error) {
      naive = { error: (error as Error).message };
    }
  }
  return {
    timestamp: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    machine: { ...machine, loadAverageAtEnd: Math.round(loadavg()[0]! * 100) / 100 },
    config: { rttCount: COUNT, warmup: WARMUP, rttPayload: 64, datagram: DATAGRAM, secondsPerRow: SECONDS, rates: RATES, naiveBytes: NAIVE_BYTES },
    direct,
    tunnel,
    naive,
  };
}

const watchdog = setTimeout(async () => {
  process.stderr.write(`bench: over the ${DEADLINE_MS / 1000} s budget, stopping everything\n`);
  await teardown();
  process.exit(2);
}, DEADLINE_MS);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    await teardown();
    process.exit(130);
  });
}

try {
  const result = await main();
  await teardown();
  clearTimeout(watchdog);
  const withTargets = printReport(result);
  const dir = join(import.meta.dir, "results");
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(withTargets, null, 2)}\n`;
  const file = join(dir, `${result.timestamp.replaceAll(":", "-")}.json`);
  writeFileSync(file, json);
  writeFileSync(join(dir, "latest.json"), json);
  console.log(`results: ${file}`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  await teardown();
  process.exit(1);
}
