/**
 * The engine on paths that look like the internet: the real programs, with
 * the impairment proxy (scripts/impair/) between the agent and the server.
 * Loss, reordering and blackouts must slow a transfer down, never corrupt it,
 * break the link, or leave it slow after the path is clean again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import { type ImpairmentProxy, startImpairment } from "../scripts/impair/control.ts";
import { addressOf, type Program } from "../scripts/programs.ts";
import { openUdp } from "../core/runtime/udp.ts";
import {
  pseudoRandomChunks,
  startEcho,
  startTcpService,
  tcpConnect,
  type TcpService,
  waitFor,
  writeAll,
} from "./harness.ts";
import { createFleet, type Fleet } from "./procs.ts";

const MB = 1024 * 1024;

interface Rig {
  fleet: Fleet;
  proxy: ImpairmentProxy;
  agent: Program;
  tcp: { host: string; port: number };
  udp: { host: string; port: number };
  ops: string;
  service: TcpService;
  close(): Promise<void>;
}

/** Server and connector on a clean path; the agent reaches the server through the proxy. */
async function startRig(seed: number): Promise<Rig> {
  const fleet = createFleet();
  const service = await startTcpService();
  const echo = await startEcho();
  const { port } = await fleet.server(0);
  const proxy = await startImpairment({ target: { host: "127.0.0.1", port }, seed });
  const direct = await fleet.clientArgs([port]);
  const tcpConnector = fleet.start("connector", [
    ...direct,
    "--service",
    "bulk",
    "--forward",
    `127.0.0.1:${service.address.port}`,
  ]);
  const udpConnector = fleet.start("connector", [
    ...direct,
    "--service",
    "echo",
    "--forward",
    `127.0.0.1:${echo.address.port}`,
  ]);
  await tcpConnector.waitForLog("registered");
  await udpConnector.waitForLog("registered");
  const viaProxy = (await fleet.clientArgs([proxy.address.port])).map((a) => (a === "off" ? "127.0.0.1:0" : a));
  // Internet-sized packets: the proxy stands for a lossy wide-area path, not loopback.
  const agent = fleet.start("agent", [
    ...viaProxy,
    "--max-udp-payload",
    "1350",
    "--map",
    "bulk=tcp://127.0.0.1:0",
    "--map",
    "echo=udp://127.0.0.1:0",
  ]);
  await agent.waitForLog("service_opened", 10_000, (e) => e.service === "bulk");
  await agent.waitForLog("service_opened", 10_000, (e) => e.service === "echo");
  const listening = (name: string) => addressOf(agent.logs.find((e) => e.event === "listening" && e.service === name)!);
  const opsEntry = await agent.waitForLog("ops_listening");
  return {
    fleet,
    proxy,
    agent,
    tcp: listening("bulk"),
    udp: listening("echo"),
    ops: String(opsEntry?.url ?? ""),
    service,
    async close() {
      await proxy.stop();
      await fleet.stopAll();
      await service.close();
      echo.close();
    },
  };
}

/** Uploads `bytes` (service mode D: it replies with the count and the SHA-256) and returns what it saw. */
async function upload(to: { host: string; port: number }, bytes: number, seed: number, deadlineMs: number) {
  const socket = await tcpConnect(to);
  try {
    socket.write("D");
    const reply = collect(socket);
    const sent = await writeAll(socket, pseudoRandomChunks(bytes, seed), true);
    const text = await within(reply, deadlineMs, `upload of ${bytes} bytes`);
    return { sent, reply: text };
  } finally {
    socket.destroy();
  }
}

/** Downloads `bytes` (service mode S) and returns their SHA-256 and the time taken. */
async function download(
  to: { host: string; port: number },
  bytes: number,
  seed: number,
  deadlineMs: number,
  arrivals?: number[],
) {
  const socket = await tcpConnect(to);
  const started = performance.now();
  try {
    const head = Buffer.alloc(9);
    head.write("S", 0, "latin1");
    head.writeUInt32BE(bytes, 1);
    head.writeUInt32BE(seed, 5);
    const hash = createHash("sha256");
    let got = 0;
    const done = new Promise<void>((resolve, reject) => {
      socket.on("data", (c: Buffer) => {
        hash.update(c);
        got += c.length;
        arrivals?.push(performance.now());
      });
      socket.on("end", () => resolve());
      socket.on("error", reject);
    });
    socket.write(head);
    await within(done, deadlineMs, `download of ${bytes} bytes (got ${got})`);
    return { bytes: got, sha256: hash.digest("hex"), ms: performance.now() - started };
  } finally {
    socket.destroy();
  }
}

function collect(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    socket.on("data", (c: Buffer) => (text += c.toString()));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function digest(bytes: number, seed: number): string {
  const hash = createHash("sha256");
  for (const chunk of pseudoRandomChunks(bytes, seed)) hash.update(chunk);
  return hash.digest("hex");
}

/** The agent's smoothed RTT to its server, from its /status document. */
async function agentRttMs(rig: Rig): Promise<number> {
  const status = (await (await fetch(new URL("/status", rig.ops))).json()) as { servers: { rttMs: number | null }[] };
  return status.servers[0]?.rttMs ?? NaN;
}

function reconnections(rig: Rig): number {
  return rig.agent.logs.filter((e) => e.event === "link_closed" || e.event === "reconnecting").length;
}

describe("lossy paths between agent and server (impairment proxy)", () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig(11);
  });
  afterAll(async () => {
    await rig?.close();
  });

  for (
    const path of [
      { name: "1 % loss", loss: 0.01, reorder: 0, deadline: 60_000 },
      { name: "5 % loss and 5 % reordering", loss: 0.05, reorder: 0.05, deadline: 15_000 },
      { name: "10 % loss", loss: 0.1, reorder: 0, deadline: 60_000 },
    ]
  ) {
    test(`20 MB each way, byte-exact, at ${path.name}`, async () => {
      await rig.proxy.set("both", { loss: path.loss, reorder: path.reorder });
      try {
        const bytes = 20 * MB;
        const up = await upload(rig.tcp, bytes, 3, path.deadline);
        expect(up.reply).toBe(`${bytes} ${up.sent}`);
        const down = await download(rig.tcp, bytes, 4, path.deadline);
        expect(down.bytes).toBe(bytes);
        expect(down.sha256).toBe(digest(bytes, 4));
        const stats = await rig.proxy.stats();
        // The proxy really dropped packets both ways.
        expect(stats.up.dropped).toBeGreaterThan(0);
        expect(stats.down.dropped).toBeGreaterThan(0);
      } finally {
        await rig.proxy.set("both", { loss: 0, reorder: 0 });
      }
    }, 150_000);
  }

  test("UDP echo at 5 % loss each way: about the path's loss, bounded delay, the link stays up", async () => {
    const before = reconnections(rig);
    await rig.proxy.set("both", { loss: 0.05 });
    const sentAt = new Map<number, number>();
    const rtts: number[] = [];
    const client = await openUdp({
      host: "127.0.0.1",
      port: 0,
      onPacket(data) {
        const seq = new DataView(data.buffer, data.byteOffset).getUint32(0);
        const t = sentAt.get(seq);
        if (t !== undefined) {
          rtts.push(performance.now() - t);
          sentAt.delete(seq);
        }
      },
      onError() {},
    });
    try {
      const payload = new Uint8Array(200);
      const total = 2_000;
      for (let i = 0; i < total; i++) {
        new DataView(payload.buffer).setUint32(0, i);
        sentAt.set(i, performance.now());
        client.send(payload, rig.udp.port, rig.udp.host);
        await Bun.sleep(2);
      }
      await Bun.sleep(500);
      const lost = (total - rtts.length) / total;
      rtts.sort((a, b) => a - b);
      const p99 = rtts[Math.floor(rtts.length * 0.99)]!;
      console.log(`UDP echo at 5 % loss each way: ${(lost * 100).toFixed(1)} % lost, p99 ${p99.toFixed(1)} ms`);
      expect(lost).toBeLessThanOrEqual(0.12);
      expect(p99).toBeLessThanOrEqual(50);
      expect(reconnections(rig)).toBe(before);
    } finally {
      client.close();
      await rig.proxy.set("both", { loss: 0 });
    }
  }, 60_000);

  test("the reported RTT follows the path's delay and jitter", async () => {
    await rig.proxy.set("both", { delayMs: 20, jitterMs: 5 });
    try {
      // Traffic makes samples; a few MB gives the estimator plenty.
      await download(rig.tcp, 4 * MB, 5, 60_000);
      const rtt = await agentRttMs(rig);
      console.log(`RTT with 20 ms ± 5 ms each way: ${rtt} ms`);
      expect(rtt).toBeGreaterThanOrEqual(40);
      expect(rtt).toBeLessThanOrEqual(2 * (2 * 25));
    } finally {
      await rig.proxy.set("both", { delayMs: 0, jitterMs: 0 });
    }
  }, 90_000);

  test("after heavy loss the link is back to its clean speed within 5 s, without reconnecting", async () => {
    const bytes = 8 * MB;
    const clean = await download(rig.tcp, bytes, 6, 60_000);
    const before = reconnections(rig);
    await rig.proxy.set("both", { loss: 0.05, reorder: 0.05 });
    // Load the impaired link in both directions for a while, as in the report.
    await Promise.all([upload(rig.tcp, 8 * MB, 7, 60_000), download(rig.tcp, 8 * MB, 8, 60_000)]);
    await rig.proxy.set("both", { loss: 0, reorder: 0 });
    const healed = performance.now();
    let best = Infinity;
    while (performance.now() - healed < 5_000 && best > clean.ms * 1.25) {
      best = Math.min(best, (await download(rig.tcp, bytes, 9, 60_000)).ms);
    }
    console.log(
      `8 MB download: clean ${clean.ms.toFixed(0)} ms, after the loss ${best.toFixed(0)} ms; RTT ${await agentRttMs(
        rig,
      )} ms`,
    );
    // 80 % of the clean throughput is at most 1.25 × its time.
    expect(best).toBeLessThanOrEqual(clean.ms * 1.25);
    expect(await agentRttMs(rig)).toBeLessThan(50);
    expect(reconnections(rig)).toBe(before);
  }, 120_000);

  // 2 s as the issue asks; 3.5 s comes close to the clients' 5 s idle timeout,
  // where the probe timers have backed off for longest.
  for (const blackoutMs of [2_000, 3_500]) {
    test(
      `a ${blackoutMs / 1000}-second blackout in the middle of a transfer: it resumes at once and completes`,
      async () => {
        await blackoutDownload(blackoutMs);
      },
      90_000,
    );
  }

  async function blackoutDownload(blackoutMs: number) {
    const bytes = 20 * MB;
    const arrivals: number[] = [];
    const transfer = download(rig.tcp, bytes, 10, 60_000, arrivals);
    await waitFor(() => arrivals.length > 10, 10_000, "the download under way");
    await rig.proxy.set("both", { loss: 1 });
    await Bun.sleep(blackoutMs);
    await rig.proxy.set("both", { loss: 0 });
    const cleared = performance.now();
    const result = await transfer;
    const resumedMs = (arrivals.find((t) => t > cleared) ?? Infinity) - cleared;
    if (process.env.ZTNA_TEST_DEBUG) {
      const buckets = new Map<number, number>();
      for (const t of arrivals) {
        buckets.set(Math.floor((t - cleared) / 500), (buckets.get(Math.floor((t - cleared) / 500)) ?? 0) + 1);
      }
      console.log([...buckets].map(([b, n]) => `${b * 0.5}s:${n}`).join(" "), `RTT ${await agentRttMs(rig)} ms`);
    }
    console.log(
      `20 MB download with a ${blackoutMs / 1000} s blackout: ${result.ms.toFixed(0)} ms; data flowed again ${
        resumedMs.toFixed(0)
      } ms after the path came back`,
    );
    expect(result.bytes).toBe(bytes);
    expect(result.sha256).toBe(digest(bytes, 10));
    // The sender's next probe after the outage comes on QUIC's backed-off probe
    // timer (RFC 9002 §6.2): measured 10–830 ms on a quiet machine, 0.6–0.8 s
    // once the earlier tests have raised the RTT estimate. Before the engine
    // was fixed, an 8 MB echo with a 2 s blackout took 33 s.
    expect(resumedMs).toBeLessThan(1_500);
  }
});
