/**
 * A lossy path: agent C reaches the server through the impairment proxy
 * (scripts/impair/), and the same TCP download and UDP echo run three times:
 * on the clean path, with loss and reordering each way, and clean again. A
 * faster engine that degrades on a lossy path, or stays slow after it, is not
 * faster (issue 9; issue 8 saw a link that never recovered).
 */
import { startImpairment } from "../../scripts/impair/control.ts";
import { track } from "../lib/processes.ts";
import { fmt, mbit, pct, table, us } from "../lib/table.ts";
import { type Env, need, round, SERVICE } from "./env.ts";
import { probeRtt, type Rtt } from "./rtt.ts";
import { bulkTransfer } from "./tcp.ts";

export interface LossyPhase {
  name: "clean" | "impaired" | "clean again";
  downloadMbitPerSecond: number | null;
  downloadError?: string;
  echo: Rtt;
  /** What the proxy did to the packets in this phase (both directions). */
  proxy: { received: number; dropped: number; held: number };
}

export interface LossyResult {
  loss: number;
  reorder: number;
  seconds: number;
  echoes: number;
  phases: LossyPhase[];
  /** Clean again vs clean: download share and echo p50 ratio. */
  recovery: { download: number | null; echoP50: number | null };
}

const AGENT_C = "c";
/** An unanswered echo counts as lost after this long (QUIC DATAGRAMs are not retransmitted). */
const ECHO_TIMEOUT_MS = 200;

export async function runLossy(env: Env): Promise<LossyResult> {
  const { seconds, loss, reorder } = env.cfg;
  const echoes = env.cfg.quick ? 300 : 1_000;
  const tunnel = need(env.tunnel, "the tunnel");
  env.log(
    `lossy: agent C through the impairment proxy, clean / ${pct(loss * 100, 1)} loss + ${
      pct(reorder * 100, 1)
    } reordering each way / clean again`,
  );
  const proxy = await startImpairment({ target: tunnel.server.address, seed: 9 });
  track({ name: "impairment proxy", stop: () => proxy.stop() });
  await tunnel.addAgent({
    name: AGENT_C,
    maps: [{ service: SERVICE.echo, proto: "udp" }, { service: SERVICE.bulk, proto: "tcp" }],
  }, proxy.address);
  const echo = tunnel.listener(AGENT_C, SERVICE.echo);
  const bulk = tunnel.listener(AGENT_C, SERVICE.bulk);

  const phase = async (name: LossyPhase["name"]): Promise<LossyPhase> => {
    await proxy.set("both", name === "impaired" ? { loss, reorder } : { loss: 0, reorder: 0 });
    await proxy.resetStats();
    let downloadMbitPerSecond: number | null = null;
    let downloadError: string | undefined;
    try {
      downloadMbitPerSecond = Math.round(
        (await bulkTransfer(`lossy-${name}-download`, bulk, "download", seconds)).mbitPerSecond,
      );
    } catch (error) {
      downloadError = (error as Error).message;
    }
    const rtt = await probeRtt(`lossy-${name}-echo`, echo, echoes, 50, 0, ECHO_TIMEOUT_MS);
    const s = await proxy.stats();
    return {
      name,
      downloadMbitPerSecond,
      ...(downloadError ? { downloadError } : {}),
      echo: rtt,
      proxy: {
        received: s.up.received + s.down.received,
        dropped: s.up.dropped + s.down.dropped,
        held: s.up.held + s.down.held,
      },
    };
  };
  const phases = [await phase("clean"), await phase("impaired"), await phase("clean again")];
  await proxy.stop();
  const [clean, , again] = phases as [LossyPhase, LossyPhase, LossyPhase];
  return {
    loss,
    reorder,
    seconds,
    echoes,
    phases,
    recovery: {
      download: clean.downloadMbitPerSecond && again.downloadMbitPerSecond !== null
        ? round(again.downloadMbitPerSecond / clean.downloadMbitPerSecond, 2)
        : null,
      echoP50: clean.echo.p50 > 0 ? round(again.echo.p50 / clean.echo.p50, 2) : null,
    },
  };
}

export function renderLossy(l: LossyResult): string[] {
  const rows = [["path", "TCP download", "echo p50", "echo p99", "echo lost", "proxy dropped / held"]];
  for (const p of l.phases) {
    rows.push([
      p.name,
      p.downloadError ? `failed: ${p.downloadError}` : mbit(p.downloadMbitPerSecond),
      us(p.echo.p50),
      us(p.echo.p99),
      `${fmt(p.echo.lost)} of ${fmt(p.echo.samples + p.echo.lost)}`,
      `${fmt(p.proxy.dropped)} / ${fmt(p.proxy.held)}`,
    ]);
  }
  return [
    `Lossy path: agent C through the impairment proxy, ${pct(l.loss * 100, 1)} loss and ${
      pct(l.reorder * 100, 1)
    } reordering each way in the middle phase; ${l.seconds} s download, ${fmt(l.echoes)} echoes per phase`,
    ...table(rows, "lrrrrr"),
    `  clean again vs clean: download ${
      l.recovery.download === null ? "-" : pct(l.recovery.download * 100, 0)
    }, echo p50 ${l.recovery.echoP50 === null ? "-" : `${fmt(l.recovery.echoP50, 2)}×`}`,
  ];
}
