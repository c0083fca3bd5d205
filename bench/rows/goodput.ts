/**
 * One-way UDP goodput of 1200 B datagrams at several offered rates, direct to
 * the sink, through the Bun floor (three trivial forwarders, when it runs) and
 * through the tunnel (sender -> agent -> server -> connector -> sink):
 * delivered/s, loss, where the lost ones went, and CPU per program (µs per
 * delivered datagram, from /proc/<pid>/stat).
 */
import { runOnce } from "../lib/child.ts";
import { FLOOR_NAME } from "../lib/floor.ts";
import { cpuMeter, rssMiB } from "../lib/proc.ts";
import { delta, type Hops, hops, type MemoryParts, memoryParts, scrape } from "../lib/scrape.ts";
import type { Sink } from "../lib/services.ts";
import { fmt, offered, pct, rate, table } from "../lib/table.ts";
import type { Tunnel } from "../lib/tunnel.ts";
import { udpDrops } from "../lib/udp-drops.ts";
import { type Address, AGENT, type Env, need, round, SERVICE } from "./env.ts";

export const DATAGRAM = 1200;

export interface GoodputRun {
  /** Datagrams/s asked of the sender; 0 = as fast as it can. */
  targetRate: number;
  offered: number;
  offeredPerSecond: number;
  /** Sends the kernel refused (would block): never offered. */
  refused: number;
  delivered: number;
  deliveredPerSecond: number;
  mbitPerSecond: number;
  lossPercent: number;
  seconds: number;
  /** Datagrams that reached the sink after the sender stopped (queued on the way), and how long that took. */
  late: number;
  drainMs: number;
  /** Kernel receive-buffer drops during the run, per process. */
  kernelDrops: Record<string, number | null>;
  hops?: Hops;
  /** CPU over the run (sender start to sink drained), % of one core, per program. */
  cpuPercent?: Record<string, number | null>;
  /** CPU µs per delivered datagram, per program. */
  cpuUsPerDatagram?: Record<string, number | null>;
  rssMiB?: Record<string, number | null>;
  /** Each program's memory by part, read from its metrics 80 % into the run (under the load, near its peak). */
  memory?: Record<string, MemoryParts | null>;
}

export interface GoodputResult {
  datagram: number;
  seconds: number;
  /** `floor`: the same rate through the Bun floor's three forwarders, when it ran (CPU per hop, named after the program it stands for). */
  rows: { targetRate: number; direct: GoodputRun; floor?: GoodputRun; tunnel: GoodputRun }[];
}

/** Programs watched in the tunnel runs, by short name. */
export interface Watched {
  pids: Record<string, number>;
  opsPorts: Record<string, number>;
}

/** Sends `count`-rate traffic for `seconds` from its own process; returns what the kernel took. */
export async function blast(name: string, target: Address, targetRate: number, seconds: number) {
  const args = [
    "--mode",
    "blast",
    "--target",
    `${target.host}:${target.port}`,
    "--size",
    String(DATAGRAM),
    "--seconds",
    String(seconds),
    "--rate",
    String(targetRate),
  ];
  return (await runOnce(name, "udp-load.ts", args, seconds * 1000 + 15_000)) as {
    sent: number;
    refused: number;
    seconds: number;
  };
}

export async function goodputRun(
  sink: Sink,
  target: Address,
  targetRate: number,
  seconds: number,
  watched?: Watched,
): Promise<GoodputRun> {
  sink.reset();
  const ops = Object.entries(watched?.opsPorts ?? {});
  const before = await Promise.all(ops.map(([, port]) => scrape(port)));
  const dropPids: Record<string, number> = { ...watched?.pids, sink: sink.pid };
  const drops0 = Object.fromEntries(Object.entries(dropPids).map(([n, pid]) => [n, udpDrops(pid)]));
  const cpu = cpuMeter(watched?.pids ?? {});
  const sending = blast(`sender@${targetRate || "max"}`, target, targetRate, seconds);
  const memory = ops.length > 0 ? memoryDuring(ops, seconds * 0.8) : undefined;
  const sent = await sending;
  const atStop = await sink.count();
  const drained = await sink.drained();
  const used = cpu.read();
  const delivered = drained.datagrams;
  const run: GoodputRun = {
    targetRate,
    offered: sent.sent,
    offeredPerSecond: Math.round(sent.sent / sent.seconds),
    refused: sent.refused,
    delivered,
    deliveredPerSecond: Math.round(delivered / sent.seconds),
    mbitPerSecond: round((delivered * DATAGRAM * 8) / sent.seconds / 1e6),
    lossPercent: sent.sent ? round((1 - delivered / sent.sent) * 100, 2) : 0,
    seconds: round(sent.seconds, 3),
    late: delivered - atStop.datagrams,
    drainMs: Math.round(drained.waitedMs),
    kernelDrops: Object.fromEntries(
      Object.entries(dropPids).map(([n, pid]) => {
        const d1 = udpDrops(pid);
        const d0 = drops0[n];
        return [n, d1 === null || d0 == null ? null : d1 - d0];
      }),
    ),
  };
  if (watched) {
    const after = await Promise.all(ops.map(([, port]) => scrape(port)));
    run.hops = hops(Object.assign({}, ...after.map((a, i) => delta(before[i]!, a))));
    run.cpuPercent = {};
    run.cpuUsPerDatagram = {};
    for (const [name, s] of Object.entries(used.cpu)) {
      run.cpuPercent[name] = s === null ? null : Math.round((s / used.seconds) * 100);
      run.cpuUsPerDatagram[name] = s === null || delivered === 0 ? null : round((s * 1e6) / delivered);
    }
    run.rssMiB = rssMiB(watched.pids);
    run.memory = await memory;
  }
  await Bun.sleep(300); // let queues settle before the next run
  return run;
}

/** Each program's memory parts, read from its metrics `seconds` from now. */
async function memoryDuring(ops: [string, number][], seconds: number): Promise<Record<string, MemoryParts | null>> {
  await Bun.sleep(seconds * 1000);
  const snapshots = await Promise.all(ops.map(([, port]) => scrape(port)));
  return Object.fromEntries(ops.map(([name], i) => [name, memoryParts(snapshots[i]!)]));
}

/** The programs a datagram to the sink passes in tunnel `t`, sent by `agent`. */
export function tunnelWatch(t: Tunnel, agent: string = AGENT.a): Watched {
  const labels = { server: "server", connector: `connector:${SERVICE.sink}`, agent: `agent:${agent}` };
  return {
    pids: Object.fromEntries(Object.entries(labels).map(([k, l]) => [k, t.pids[l]!])),
    opsPorts: Object.fromEntries(Object.entries(labels).map(([k, l]) => [k, t.opsPorts[l]!])),
  };
}

export async function runGoodput(env: Env): Promise<GoodputResult> {
  const { rates, seconds } = env.cfg;
  const sink = need(env.sink, "the UDP sink");
  const via = need(env.tunnel, "the tunnel").listener(AGENT.a, SERVICE.sink);
  const watched = tunnelWatch(need(env.tunnel, "the tunnel"));
  const floor = env.floor?.sink;
  env.log(`goodput: ${rates.length} offered rates × ${seconds} s, direct, ${floor ? "Bun floor, " : ""}tunnel`);
  const rows: GoodputResult["rows"] = [];
  for (const r of rates) {
    const direct = await goodputRun(sink, sink.address, r, seconds);
    const hops = floor
      ? await goodputRun(sink, floor.address, r, seconds, { pids: floor.pids, opsPorts: {} })
      : undefined;
    const tunnel = await goodputRun(sink, via, r, seconds, watched);
    rows.push({ targetRate: r, direct, ...(hops ? { floor: hops } : {}), tunnel });
  }
  return { datagram: DATAGRAM, seconds, rows };
}

export function renderGoodput(g: GoodputResult): string[] {
  const out = [`One-way UDP goodput, ${g.datagram} B datagrams, ${g.seconds} s per run`];
  const rows = [[
    "offered",
    "path",
    "sent/s",
    "delivered/s",
    "Mbit/s",
    "loss",
    "CPU µs/datagram srv/conn/agent",
    "CPU % srv/conn/agent",
  ]];
  for (const r of g.rows) {
    const line = (path: string, x: GoodputRun) => {
      const us = x.cpuUsPerDatagram;
      const c = x.cpuPercent;
      rows.push([
        path === "direct" ? offered(r.targetRate) : "",
        path,
        rate(x.offeredPerSecond),
        rate(x.deliveredPerSecond),
        fmt(x.mbitPerSecond),
        pct(x.lossPercent, 2),
        us ? `${fmt(us.server, 1)} / ${fmt(us.connector, 1)} / ${fmt(us.agent, 1)}` : "",
        c ? `${fmt(c.server)} / ${fmt(c.connector)} / ${fmt(c.agent)}` : "",
      ]);
    };
    line("direct", r.direct);
    if (r.floor) line(FLOOR_NAME, r.floor);
    line("tunnel", r.tunnel);
  }
  out.push(...table(rows, "llrrrrrr"));
  out.push("  Where tunnel datagrams went (program metrics; kernel = receive-buffer drops, /proc/net/udp)");
  const hopRows = [[
    "offered",
    "sent",
    "agent->server",
    "relayed",
    "conn->sink",
    "sink got",
    "late",
    "kernel agent/srv/conn/sink",
    "metric drops",
  ]];
  for (const r of g.rows) {
    const t = r.tunnel;
    const h = t.hops;
    const k = t.kernelDrops;
    const drops = Object.entries(h?.drops ?? {}).map(([n, v]) => `${n.replace(/^ztna_|_total/g, "")}=${fmt(v)}`).join(
      " ",
    );
    hopRows.push([
      offered(r.targetRate),
      fmt(t.offered),
      fmt(h?.agentToServer),
      fmt(h?.relayed),
      fmt(h?.connectorToService),
      fmt(t.delivered),
      fmt(t.late),
      `${fmt(k.agent)}/${fmt(k.server)}/${fmt(k.connector)}/${fmt(k.sink)}`,
      drops || "-",
    ]);
  }
  out.push(...table(hopRows, "lrrrrrrrl"));
  out.push(...renderMemory(g));
  return out;
}

/** Where each program's memory is under each offered load. */
function renderMemory(g: GoodputResult): string[] {
  const mib = (v: number | undefined) => (v === undefined ? "-" : `${fmt(v, 1)} MiB`);
  const rows = [["offered", "program", "RSS", "mapped files", "JS heap", "external", "other private"]];
  for (const r of g.rows) {
    Object.entries(r.tunnel.memory ?? {}).forEach(([program, m], i) => {
      rows.push([
        i === 0 ? offered(r.targetRate) : "",
        program,
        ...[m?.rss, m?.files, m?.jsHeap, m?.external, m?.other].map(mib),
      ]);
    });
  }
  if (rows.length === 1) return [];
  return [
    "  Memory of the tunnel's programs 80 % into each run (their own metrics): RSS = mapped files (mostly Bun's code)",
    "  + JS heap + external (ArrayBuffers' bytes, as the engine reports them) + other private (allocators' free pages, native state)",
    ...table(rows, "llrrrrr"),
  ];
}
