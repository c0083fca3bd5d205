/**
 * Memory after abuse (issue 8, item 8): an mTLS server takes N handshakes from
 * clients without a certificate, all refused; then its RSS is watched until it
 * is back within 30 MiB of its idle RSS, or for the watch period.
 */
import { join } from "node:path";
import { spawnBenchChild } from "../lib/child.ts";
import { MiB, readMemory } from "../lib/proc.ts";
import { fmt, mib, rate } from "../lib/table.ts";
import { formatAddress } from "../../core/net/address.ts";
import { startServer } from "../lib/tunnel.ts";
import { type Env, round } from "./env.ts";

/** Issue 8's bound: back within this much of idle. */
export const ABUSE_MARGIN_MIB = 30;

export interface AbuseResult {
  handshakes: number;
  refused: number;
  /** Handshakes that ended registered: the server let a client without a certificate in. */
  registered: number;
  reasons: Record<string, number>;
  perSecond: number;
  idleRssMiB: number | null;
  peakRssMiB: number | null;
  /** RSS at the end of the watch, and seconds after the abuse until it was within the margin (null: never). */
  endRssMiB: number | null;
  backWithinSeconds: number | null;
  watchSeconds: number;
  /** [seconds after the abuse, RSS MiB] */
  samples: [number, number][];
}

export async function runAbuse(env: Env): Promise<AbuseResult> {
  const { abuseHandshakes, abuseWatchSeconds } = env.cfg;
  env.log(
    `abuse: ${abuseHandshakes} handshakes without a client certificate against an mTLS server, then up to ${abuseWatchSeconds} s of RSS`,
  );
  const stateDir = join(env.work, "abuse-state");
  const server = await startServer(stateDir, env.launch, ["--ca", join(stateDir, "ca.pem")]);
  const pid = server.program.pid;
  const rss = () => {
    const m = readMemory(pid);
    return m ? round(m.rss / MiB) : null;
  };
  await Bun.sleep(2_000);
  const idleRssMiB = rss();
  let peak = idleRssMiB ?? 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss() ?? 0)), 100);

  const swarm = spawnBenchChild("quic-swarm-refused", "quic-swarm.ts", [
    "--target",
    formatAddress(server.address),
    "--ca",
    server.caPath,
  ]);
  await swarm.next(20_000);
  swarm.send(`refuse ${abuseHandshakes}`);
  const r = (await swarm.next(60_000 + abuseHandshakes * 50)) as {
    dialled: number;
    refused: number;
    registered: number;
    perSecond: number;
    reasons: Record<string, number>;
  };
  await swarm.stop();

  const samples: [number, number][] = [];
  const start = performance.now();
  let backWithinSeconds: number | null = null;
  while (performance.now() - start < abuseWatchSeconds * 1000) {
    const now = rss();
    const t = round((performance.now() - start) / 1000, 1);
    if (now !== null) samples.push([t, now]);
    if (now !== null && idleRssMiB !== null && now <= idleRssMiB + ABUSE_MARGIN_MIB) {
      backWithinSeconds = t;
      break;
    }
    await Bun.sleep(500);
  }
  clearInterval(sampler);
  const endRssMiB = rss();
  await server.program.stop("SIGTERM", 5_000);
  return {
    handshakes: r.dialled,
    refused: r.refused,
    registered: r.registered,
    reasons: r.reasons,
    perSecond: Math.round(r.perSecond),
    idleRssMiB,
    peakRssMiB: round(peak),
    endRssMiB,
    backWithinSeconds,
    watchSeconds: abuseWatchSeconds,
    samples,
  };
}

export function renderAbuse(a: AbuseResult): string[] {
  const reasons = Object.entries(a.reasons).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
  return [
    `Memory after abuse: ${fmt(a.handshakes)} handshakes without a client certificate against an mTLS server (${
      rate(a.perSecond)
    }/s)`,
    `  refused ${fmt(a.refused)}, registered ${fmt(a.registered)}${reasons ? ` (${reasons})` : ""}`,
    `  server RSS: idle ${mib(a.idleRssMiB)}, peak ${mib(a.peakRssMiB)}, ` +
    (a.backWithinSeconds !== null
      ? `back within ${ABUSE_MARGIN_MIB} MiB of idle after ${a.backWithinSeconds} s`
      : `${mib(a.endRssMiB)} after ${a.watchSeconds} s`),
  ];
}
