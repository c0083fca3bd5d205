/** The bench's result shape, its targets, and the printed table. */
import type { Hops } from "./scrape.ts";
import type { LatencySummary } from "./stats.ts";

export interface GoodputRow {
  /** Datagrams/s asked of the sender; 0 = as fast as it can. */
  targetRate: number;
  offered: number;
  /** Sends the kernel refused (would block): never offered. */
  refused: number;
  offeredPerSecond: number;
  delivered: number;
  deliveredPerSecond: number;
  mbitPerSecond: number;
  lossPercent: number;
  seconds: number;
  drainMs: number;
  /** Datagrams that reached the sink after the sender had stopped (queued on the way). */
  deliveredAfterStop: number;
  hops?: Hops;
  /** Kernel UDP receive drops (socket buffer full) during the row, per process. */
  kernelDrops?: Record<string, number | null>;
  /** CPU use over the row (sender start to drained), % of one core. */
  cpuPercent?: Record<string, number | null>;
  rssMiB?: Record<string, number | null>;
}

type Rtt = LatencySummary & { lost?: number };
type Rss = Record<string, { peakRss: number | null; hwm: number | null; rss: number | null }>;

export interface BenchResult {
  timestamp: string;
  durationSeconds: number;
  machine: Record<string, string | number | null>;
  config: Record<string, unknown>;
  direct: { rtt: Rtt; goodput: GoodputRow[] };
  tunnel: {
    rtt: Rtt;
    rttAfterLoad: Rtt;
    goodput: GoodputRow[];
    rss: Rss;
    idleRss: Record<string, number | null>;
    shutdown: Record<string, { exitCode: number; ms: number; lastLogs?: unknown[] }>;
  };
  naive:
    | { skipped: true }
    | { error: string }
    | {
        rtt?: Rtt;
        goodput?: { bytes: number; received: number | null; seconds: number; mbitPerSecond: number | null };
        serverRssMiB?: number | null;
      };
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean;
}

const RTT_TARGET_US = 300;
const RATE_TARGET = 50_000;
const LOSS_TARGET = 1;
const RSS_TARGET_MIB = 80;

const mib = (bytes: number | null | undefined) => (bytes == null ? null : bytes / 2 ** 20);
const fmt = (n: number | null | undefined, digits = 0) =>
  n == null || Number.isNaN(n) ? "-" : n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const us = (n: number | null | undefined) => (n == null || Number.isNaN(n) ? "-" : `${fmt(n)} µs`);
const rateLabel = (r: number) => (r === 0 ? "full speed" : `${fmt(r / 1000)}k/s`);

function peakRss(rss: Rss, name: string): number | null {
  const r = rss[name];
  if (!r) return null;
  const values = [r.peakRss, r.hwm].filter((v): v is number => v != null);
  return values.length ? mib(Math.max(...values)) : null;
}

export function evaluateTargets(result: BenchResult): Target[] {
  const p50 = result.tunnel.rtt.p50;
  const good = result.tunnel.goodput.filter((r) => r.lossPercent < LOSS_TARGET);
  const best = good.sort((a, b) => b.deliveredPerSecond - a.deliveredPerSecond)[0];
  const serverRss = peakRss(result.tunnel.rss, "server");
  return [
    { name: "tunnel RTT p50", goal: `≤ ${RTT_TARGET_US} µs`, value: us(p50), met: p50 <= RTT_TARGET_US },
    {
      name: "goodput, 1200 B",
      goal: `≥ ${fmt(RATE_TARGET)}/s, < ${LOSS_TARGET} % loss`,
      value: best ? `${fmt(best.deliveredPerSecond)}/s at ${fmt(best.lossPercent, 2)} % loss` : "no row under 1 % loss",
      met: !!best && best.deliveredPerSecond >= RATE_TARGET,
    },
    { name: "server peak RSS", goal: `≤ ${RSS_TARGET_MIB} MiB`, value: `${fmt(serverRss, 1)} MiB`, met: serverRss != null && serverRss <= RSS_TARGET_MIB },
  ];
}

function table(rows: string[][], align: ("l" | "r")[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) => "  " + r.map((cell, c) => (align[c] === "l" ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "))
    .join("\n");
}

/** Prints the report; returns the result with targets and ratios added. */
export function printReport(result: BenchResult) {
  const { machine, direct, tunnel, naive } = result;
  const targets = evaluateTargets(result);
  const ratio = {
    p50: Math.round((tunnel.rtt.p50 / direct.rtt.p50) * 10) / 10,
    p99: Math.round((tunnel.rtt.p99 / direct.rtt.p99) * 10) / 10,
  };
  const out: string[] = [];
  out.push("");
  out.push(`ztna bench ${result.timestamp} (${result.durationSeconds} s)`);
  out.push(
    `machine: ${machine.cores} cores (${machine.cpuModel}), bun ${machine.bun}, linux ${machine.kernel}, ` +
      `${fmt(Number(machine.memTotalMiB))} MiB RAM, net.core.rmem_default ${fmt(Number(machine.rmemDefault))} B`,
  );
  const load = Math.max(Number(machine.loadAverageAtStart), Number(machine.loadAverageAtEnd));
  if (load > Number(machine.cores) / 2) {
    out.push(`WARNING: 1-min load average ${machine.loadAverageAtStart} at start, ${machine.loadAverageAtEnd} at end: other work competed for the CPU; figures are pessimistic.`);
  }
  out.push("");
  const naiveRtt = "rtt" in naive ? naive.rtt : undefined;
  const rttRow = (name: string, r: Rtt | undefined): string[] =>
    [name, us(r?.p50), us(r?.p99), us(r?.mean), us(r?.max), r?.lost === undefined ? "-" : fmt(r.lost)];
  out.push(`Round trip, 64 B payload, ${fmt(Number(result.config.rttCount))} sequential (after ${result.config.warmup} warm-up)`);
  out.push(
    table(
      [
        ["path", "p50", "p99", "mean", "max", "lost"],
        rttRow("direct UDP echo (no tunnel)", direct.rtt),
        rttRow("through the tunnel", tunnel.rtt),
        rttRow("through the tunnel, after load", tunnel.rttAfterLoad),
        rttRow("naive @matrixai/quic stream", naiveRtt),
        ["tunnel / direct", `${ratio.p50}×`, `${ratio.p99}×`, "", "", ""],
      ],
      ["l", "r", "r", "r", "r", "r"],
    ),
  );
  out.push("");
  out.push(`One-way goodput, ${result.config.datagram} B datagrams, ${result.config.secondsPerRow} s per row (sender -> [agent -> server -> connector] -> sink)`);
  const rows: string[][] = [["offered", "path", "sent/s", "delivered/s", "Mbit/s", "loss %", "CPU% srv/conn/agent*"]];
  direct.goodput.forEach((d, i) => {
    const t = tunnel.goodput[i];
    rows.push([rateLabel(d.targetRate), "direct", fmt(d.offeredPerSecond), fmt(d.deliveredPerSecond), fmt(d.mbitPerSecond, 1), fmt(d.lossPercent, 2), ""]);
    if (t) {
      const c = t.cpuPercent ?? {};
      rows.push(["", "tunnel", fmt(t.offeredPerSecond), fmt(t.deliveredPerSecond), fmt(t.mbitPerSecond, 1), fmt(t.lossPercent, 2), `${fmt(c.server)}/${fmt(c.connector)}/${fmt(c.agent)}`]);
    }
  });
  out.push(table(rows, ["l", "l", "r", "r", "r", "r", "r"]));
  out.push("  * % of one core, averaged from sender start until the sink drained");
  if ("goodput" in naive && naive.goodput) {
    const g = naive.goodput;
    out.push(`  naive @matrixai/quic stream: ${fmt(mib(g.received), 1)} MiB one way in ${fmt(g.seconds, 2)} s = ${fmt(g.mbitPerSecond, 1)} Mbit/s`);
  } else if ("error" in naive) out.push(`  naive @matrixai/quic: failed: ${naive.error}`);
  out.push("");
  out.push("Where tunnel datagrams went (per row, from the programs' /metrics)");
  out.push("  kernel = UDP receive-buffer overflows (/proc/net/udp drops) in agent/server/connector/sink");
  out.push("  late = reached the sink after the sender stopped (queued on the way), drain = ms until the sink was idle 500 ms");
  const hopRows: string[][] = [["offered", "sent", "agent->server", "relayed", "connector->sink", "sink got", "late", "drain", "kernel a/s/c/sink", "metric drops"]];
  for (const t of tunnel.goodput) {
    const h = t.hops;
    const k = t.kernelDrops ?? {};
    const drops = Object.entries(h?.drops ?? {}).map(([name, v]) => `${name.replace(/^ztna_|_total/g, "")}=${fmt(v)}`).join(" ");
    hopRows.push([
      rateLabel(t.targetRate), fmt(t.offered), fmt(h?.agentToServer), fmt(h?.relayed), fmt(h?.connectorToService), fmt(t.delivered), fmt(t.deliveredAfterStop), fmt(t.drainMs),
      `${fmt(k.agent)}/${fmt(k.server)}/${fmt(k.connector)}/${fmt(k.sink)}`, drops || "-",
    ]);
  }
  out.push(table(hopRows, ["l", "r", "r", "r", "r", "r", "r", "r", "r", "l"]));
  out.push("");
  const rssLine = ["server", "connector", "agent"]
    .map((n) => `${n} ${fmt(peakRss(tunnel.rss, n), 1)} MiB (idle ${fmt(mib(tunnel.idleRss[n]), 1)})`)
    .join(", ");
  out.push(`Peak RSS: ${rssLine}`);
  if ("serverRssMiB" in naive) out.push(`          naive @matrixai/quic server ${fmt(naive.serverRssMiB, 1)} MiB`);
  const shutdown = Object.entries(tunnel.shutdown).map(([n, s]) => `${n} exit ${s.exitCode} in ${fmt(s.ms)} ms`).join(", ");
  out.push(`Shutdown: ${shutdown}`);
  out.push("");
  out.push("Targets (Rust predecessor: 312 µs avg RTT through its tunnel, 53 µs direct)");
  out.push(table([["", "goal", "measured", ""], ...targets.map((t) => [t.name, t.goal, t.value, t.met ? "met" : "NOT MET"])], ["l", "l", "r", "l"]));
  out.push("");
  console.log(out.join("\n"));
  return { ...result, ratio, targets };
}
