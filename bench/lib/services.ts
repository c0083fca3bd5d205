/**
 * The stand-ins for private services, each its own process: a UDP echo, a UDP
 * sink that counts, a TCP bulk server, a key-value server.
 */
import { type BenchChild, spawnBenchChild } from "./child.ts";
import type { Address } from "./tunnel.ts";

export interface Service {
  address: Address;
  pid: number;
}

async function service(name: string, script: string, args: string[] = []): Promise<Service & { child: BenchChild }> {
  const child = spawnBenchChild(name, script, args);
  const { port } = (await child.next(15_000)) as { port: number };
  return { address: { host: "127.0.0.1", port }, pid: child.pid, child };
}

export const startUdpEcho = () => service("udp-echo", "udp-echo.ts");
export const startTcpBulkServer = () => service("tcp-bulk-server", "tcp-bulk.ts", ["--role", "server"]);
export const startKvServer = () => service("kv-server", "kv-server.ts");

export interface Sink extends Service {
  /** Zeroes the count. */
  reset(): void;
  count(): Promise<{ datagrams: number; idleMs: number }>;
  /** Waits until nothing arrived for `quietMs` (at most `maxMs`); returns the count. */
  drained(quietMs?: number, maxMs?: number): Promise<{ datagrams: number; waitedMs: number }>;
}

export async function startUdpSink(): Promise<Sink> {
  const s = await service("udp-sink", "udp-sink.ts");
  const count = async () => {
    s.child.send("count");
    return (await s.child.next(5_000)) as { datagrams: number; idleMs: number };
  };
  return {
    address: s.address,
    pid: s.pid,
    reset: () => s.child.send("reset"),
    count,
    async drained(quietMs = 500, maxMs = 3_000) {
      const start = performance.now();
      for (;;) {
        const c = await count();
        const waitedMs = performance.now() - start;
        if (c.idleMs >= quietMs || waitedMs > maxMs) return { datagrams: c.datagrams, waitedMs };
        await Bun.sleep(100);
      }
    },
  };
}
