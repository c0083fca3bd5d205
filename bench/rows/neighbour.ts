/**
 * The noisy neighbour: agent A does a sparse echo (one ping every 5 ms)
 * through the server while agent B, another connection to the same server,
 * sends to its own service (the sink) at full speed, then at a steady rate.
 * A alone first, as the baseline of the same run. Then, when it is up, the
 * same two loads from a B with a tunnel of its own (its own server and
 * connector): A and B then share only the machine's CPUs, which separates
 * what the shared server costs A from what the load on the machine does.
 */
import { delta, scrape } from "../lib/scrape.ts";
import { fmt, offered, pct, rate, table, us } from "../lib/table.ts";
import { blast, tunnelWatch } from "./goodput.ts";
import { AGENT, type Env, need, round, SERVICE } from "./env.ts";
import { probeRtt, type Rtt } from "./rtt.ts";

export interface NeighbourPhase {
  /** "apart": B's load goes through a tunnel of its own, not A's server. */
  name: "alone" | "flood" | "steady" | "flood-apart" | "steady-apart";
  /** B's offered rate (0 = full speed), null when B is quiet. */
  bRate: number | null;
  a: Rtt;
  b?: { offeredPerSecond: number; deliveredPerSecond: number; lossPercent: number };
  /** Drop counters that moved during the phase in B's agent, B's server and the sink's connector. */
  bDrops?: Record<string, number>;
}

export interface NeighbourResult {
  seconds: number;
  intervalMs: number;
  phases: NeighbourPhase[];
}

export async function runNeighbour(env: Env): Promise<NeighbourResult> {
  const { seconds, sparseIntervalMs, neighbourRate } = env.cfg;
  const tunnel = need(env.tunnel, "the tunnel");
  const sink = need(env.sink, "the UDP sink");
  const aTarget = tunnel.listener(AGENT.a, SERVICE.echo);
  const bShared = tunnel.listener(AGENT.b, SERVICE.sink);
  const bApart = env.apart?.listener(AGENT.b, SERVICE.sink);
  const count = Math.max(20, Math.round((seconds * 1000) / sparseIntervalMs));
  env.log(
    `neighbour: A pings every ${sparseIntervalMs} ms for ${seconds} s: alone, B at full speed, B at ${
      rate(neighbourRate)
    }/s`,
  );

  const phase = async (
    name: NeighbourPhase["name"],
    bRate: number | null,
    bTarget = bShared,
  ): Promise<NeighbourPhase> => {
    if (bRate === null) {
      return { name, bRate, a: await probeRtt(`neighbour-${name}-a`, aTarget, count, 10, sparseIntervalMs) };
    }
    sink.reset();
    // B's programs, to tell where B's lost datagrams went.
    const ops = Object.values(tunnelWatch(bTarget === bShared ? tunnel : env.apart!, AGENT.b).opsPorts);
    const before = await Promise.all(ops.map((p) => scrape(p)));
    // B starts first and outlasts A, so every one of A's pings meets the load.
    const bSeconds = seconds + 1;
    const b = blast(`neighbour-${name}-b`, bTarget, bRate, bSeconds);
    await Bun.sleep(300);
    const a = await probeRtt(`neighbour-${name}-a`, aTarget, count, 10, sparseIntervalMs);
    const sent = await b;
    const got = await sink.drained();
    const after = await Promise.all(ops.map((p) => scrape(p)));
    const bDrops = Object.fromEntries(
      after.flatMap((a, i) => Object.entries(delta(before[i]!, a))).filter(([name]) => name.includes("_drops_total")),
    );
    await Bun.sleep(300);
    return {
      name,
      bRate,
      a,
      b: {
        offeredPerSecond: Math.round(sent.sent / sent.seconds),
        deliveredPerSecond: Math.round(got.datagrams / sent.seconds),
        lossPercent: sent.sent ? round((1 - got.datagrams / sent.sent) * 100, 2) : 0,
      },
      bDrops,
    };
  };
  const phases = [await phase("alone", null), await phase("flood", 0), await phase("steady", neighbourRate)];
  if (bApart) phases.push(await phase("flood-apart", 0, bApart), await phase("steady-apart", neighbourRate, bApart));
  return { seconds, intervalMs: sparseIntervalMs, phases };
}

export function renderNeighbour(n: NeighbourResult): string[] {
  const rows = [[
    "B (other agent, own service)",
    "B's server",
    "A p50",
    "A p99",
    "A max",
    "A lost",
    "B sent/s",
    "B delivered/s",
    "B loss",
  ]];
  for (const p of n.phases) {
    rows.push([
      p.bRate === null ? "quiet" : offered(p.bRate),
      p.bRate === null ? "" : p.name.endsWith("-apart") ? "its own" : "A's",
      us(p.a.p50),
      us(p.a.p99),
      us(p.a.max),
      fmt(p.a.lost),
      rate(p.b?.offeredPerSecond),
      rate(p.b?.deliveredPerSecond),
      p.b ? pct(p.b.lossPercent, 2) : "-",
    ]);
  }
  const drops = n.phases.filter((p) => p.bDrops).map((p) =>
    `  ${offered(p.bRate!)} through ${p.name.endsWith("-apart") ? "its own" : "A's"} server: ${
      Object.entries(p.bDrops!).map(([k, v]) => `${k.replace(/^ztna_|_total/g, "")}=${fmt(v)}`).join(" ") || "-"
    }`
  );
  return [
    `Noisy neighbour: agent A's sparse echo (one every ${n.intervalMs} ms, ${n.seconds} s) while agent B sends`,
    ...table(rows, "llrrrrrrr"),
    ...(drops.length
      ? [
        "  Drops counted by B's agent, B's server and the sink's connector in each phase (the agent reads its kernel drops once a second: a phase can carry the last one's):",
        ...drops,
      ]
      : []),
  ];
}
