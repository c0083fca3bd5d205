/**
 * `npm run demo`: a UDP echo service, the server (with its development
 * certificate), a connector and an agent, all on loopback; traffic through the
 * tunnel; a short report. `--hold` keeps everything running for `nc -u`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { addressOf, portOfUrl, type Program, spawnProgram } from "./programs.ts";

const hold = process.argv.includes("--hold");
const verbose = process.argv.includes("--verbose");
const ECHOES = 2_000;
const BURST = 20_000;
const WINDOW = 256;

const stateDir = mkdtempSync(join(tmpdir(), "ztna-demo-"));
const programs: Program[] = [];
let echo: UdpSocket | null = null;

async function teardown() {
  await Promise.all(programs.map((p) => p.stop("SIGTERM", 5_000)));
  echo?.close();
  rmSync(stateDir, { recursive: true, force: true });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function main() {
  echo = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket: (data, port, host) => echo!.send(data, port, host),
    onError: () => {},
  });
  const common = { cwd: stateDir, echo: verbose };

  const server = spawnProgram(
    "server",
    ["--listen", "127.0.0.1:0", "--ops", "127.0.0.1:0", "--state-dir", stateDir],
    common,
  );
  programs.push(server);
  const serverAddr = addressOf(await server.waitForLog("listening"));
  const serverOps = portOfUrl(await server.waitForLog("ops_listening"));
  const ca = join(stateDir, "ca.pem");
  const target = `127.0.0.1:${serverAddr.port}`;

  const connector = spawnProgram(
    "connector",
    [
      "--server",
      target,
      "--server-name",
      "localhost",
      "--ca",
      ca,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
      "--ops",
      "127.0.0.1:0",
      "--state-dir",
      stateDir,
    ],
    common,
  );
  programs.push(connector);
  const agent = spawnProgram(
    "agent",
    [
      "--server",
      target,
      "--server-name",
      "localhost",
      "--ca",
      ca,
      "--map",
      "echo=udp://127.0.0.1:0",
      "--ops",
      "127.0.0.1:0",
      "--state-dir",
      stateDir,
    ],
    common,
  );
  programs.push(agent);
  await connector.waitForLog("registered");
  const connectorOps = portOfUrl(await connector.waitForLog("ops_listening"));
  const agentOps = portOfUrl(await agent.waitForLog("ops_listening"));
  const listen = addressOf(await agent.waitForLog("listening"));
  await agent.waitForLog("service_opened");

  // Round trips, one at a time: byte-exact check and RTT.
  const rtts: number[] = [];
  let pending: { payload: Uint8Array; sentAt: number; resolve: (ok: boolean) => void } | null = null;
  let burstReceived = 0;
  const client = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket(data) {
      if (pending) {
        const p = pending;
        pending = null;
        rtts.push(performance.now() - p.sentAt);
        p.resolve(Buffer.from(data).equals(Buffer.from(p.payload)));
      } else {
        burstReceived++;
      }
    },
    onError: () => {},
  });
  let verified = 0;
  for (let i = 0; i < ECHOES; i++) {
    const payload = crypto.getRandomValues(new Uint8Array(64));
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        pending = null;
        resolve(false);
      }, 1_000);
      pending = { payload, sentAt: performance.now(), resolve: (v) => (clearTimeout(timer), resolve(v)) };
      client.send(payload, listen.port, listen.host);
    });
    if (ok) verified++;
  }
  rtts.sort((a, b) => a - b);

  // A paced burst of 1200-byte datagrams: how many per second make the round trip.
  const payload = new Uint8Array(1200);
  const started = performance.now();
  const batch = 32;
  for (let sent = 0; sent < BURST; sent += batch) {
    for (let i = 0; i < batch; i++) client.send(payload, listen.port, listen.host);
    // A window of datagrams in flight, so the demo measures the relay rather
    // than how fast queues overflow; a lost datagram frees its slot after 50 ms.
    const deadline = performance.now() + 50;
    while (sent + batch - burstReceived > WINDOW && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 0));
    }
  }
  const drainDeadline = performance.now() + 2_000;
  while (burstReceived < BURST && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  client.close();

  const us = (ms: number) => `${Math.round(ms * 1000)} µs`;
  console.log("");
  console.log("ztna demo: agent -> server -> connector -> UDP echo, all on loopback");
  console.log(`  echoes verified byte-exact  ${verified}/${ECHOES}`);
  console.log(
    `  RTT through the tunnel      p50 ${us(percentile(rtts, 0.5))}, p99 ${
      us(percentile(rtts, 0.99))
    } (64-byte payloads)`,
  );
  console.log(
    `  echo throughput             ${
      Math.round(burstReceived / seconds).toLocaleString("en")
    } datagrams/s round trip, ${burstReceived}/${BURST} returned (1200-byte payloads)`,
  );
  console.log(`  server metrics              http://127.0.0.1:${serverOps}/metrics`);
  console.log(`  connector ready             http://127.0.0.1:${connectorOps}/readyz`);
  console.log(`  agent health                http://127.0.0.1:${agentOps}/healthz`);
  console.log(
    `  status of each (with --hold) bun cli.ts status --ops 127.0.0.1:${serverOps}  (or :${connectorOps}, :${agentOps})`,
  );
  console.log(`  try it yourself             nc -u ${listen.host} ${listen.port}${hold ? "" : "   (with --hold)"}`);
  console.log("");

  if (verified !== ECHOES) throw new Error(`only ${verified} of ${ECHOES} echoes came back intact`);
  if (hold) {
    console.log("holding; press Ctrl-C to stop");
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
  }
}

try {
  await main();
  await teardown();
  process.exit(0);
} catch (error) {
  console.error(`demo failed: ${(error as Error).message}`);
  await teardown();
  process.exit(1);
}
