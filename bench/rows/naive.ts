/**
 * The naive baseline (only with --only naive): the same echo and a one-way
 * stream over @matrixai/quic's high-level API, two processes.
 */
import { join } from "node:path";
import { ensureDevCertificates } from "../../core/certs.ts";
import { runOnce, spawnBenchChild } from "../lib/child.ts";
import { MiB, readMemory } from "../lib/proc.ts";
import { mbit, mib, us } from "../lib/table.ts";
import { type Env, round } from "./env.ts";
import type { Rtt } from "./rtt.ts";

export interface NaiveResult {
  rtt?: Rtt;
  goodput?: { bytes: number; received: number | null; seconds: number; mbitPerSecond: number | null };
  serverPeakRssMiB: number | null;
}

const BYTES = 16 << 20;

export async function runNaive(env: Env): Promise<NaiveResult> {
  env.log("naive: @matrixai/quic streams");
  const certs = await ensureDevCertificates(join(env.work, "naive"));
  const server = spawnBenchChild("naive-server", "naive-quic.ts", [
    "--mode",
    "server",
    "--cert",
    certs.certPath,
    "--key",
    certs.keyPath,
  ]);
  const { port } = (await server.next(15_000)) as { port: number };
  const budgetMs = 20_000;
  const result = (await runOnce("naive-client", "naive-quic.ts", [
    "--mode",
    "client",
    "--target",
    `127.0.0.1:${port}`,
    "--count",
    String(env.cfg.rttCount),
    "--warmup",
    String(env.cfg.warmup),
    "--bytes",
    String(BYTES),
    "--budget-ms",
    String(budgetMs),
  ], 2 * budgetMs + 20_000)) as Omit<NaiveResult, "serverPeakRssMiB">;
  const m = readMemory(server.pid);
  await server.stop();
  return { ...result, serverPeakRssMiB: m ? round(m.hwm / MiB) : null };
}

export function renderNaive(n: NaiveResult): string[] {
  return [
    "Naive @matrixai/quic stream API (baseline)",
    `  echo p50 ${us(n.rtt?.p50)}, p99 ${us(n.rtt?.p99)}; one way ${mbit(n.goodput?.mbitPerSecond)}; server peak RSS ${
      mib(n.serverPeakRssMiB)
    }`,
  ];
}
