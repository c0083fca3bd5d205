/**
 * The Bun floor: a chain of trivial forwarders, one process per hop, standing
 * in for agent → server → connector. It pays what any relay of Bun processes
 * pays on this machine (a wake-up, a read and a write per hop) and nothing
 * of ours (QUIC, framing, crypto), so the gap between it and the tunnel is
 * the part the engine can still win.
 */
import { spawnBenchChild } from "./child.ts";
import type { Address } from "./tunnel.ts";

/** Hops of the floor chain: as many processes as the tunnel has. */
export const FLOOR_HOPS = 3;
/** How the rows and goals name the floor. */
export const FLOOR_NAME = `${FLOOR_HOPS} Bun forwarders`;

export interface BunChain {
  /** Where to send: the first hop. */
  address: Address;
  /** The hops' processes by the program each stands for: agent (first), server, connector (last). */
  pids: { agent: number; server: number; connector: number };
}

/** Starts the chain of FLOOR_HOPS forwarders towards `target`, last hop first. */
export async function startBunChain(kind: "udp" | "tcp", target: Address): Promise<BunChain> {
  let next = target;
  const pids: number[] = [];
  for (let i = FLOOR_HOPS; i > 0; i--) {
    const child = spawnBenchChild(`${kind}-forwarder-${i}`, `${kind}-forwarder.ts`, [
      "--next",
      `${next.host}:${next.port}`,
    ]);
    const { port } = (await child.next(15_000)) as { port: number };
    next = { host: "127.0.0.1", port };
    pids.unshift(child.pid);
  }
  return { address: next, pids: { agent: pids[0]!, server: pids[1]!, connector: pids[2]! } };
}
