/**
 * TCP goodput through the tunnel against direct TCP on loopback, in one run.
 *
 *   npx bun bench/tcp.ts [--mb 256] [--target 500] [--max-udp-payload N] [--json FILE] [--verbose]
 *
 * --max-udp-payload sets the QUIC packet size of all three programs (default
 * 1350, right for the internet; loopback or jumbo-frame networks allow more).
 *
 * Spawns the real programs (server, connector, agent) plus a TCP sink/source
 * process (this file with --role sink), then moves --mb MiB each way over one
 * connection: upload (client -> sink, which answers with the byte count at
 * EOF) and download (the sink's source mode sends the bytes, then FIN). The
 * same transfers run directly against the sink for the baseline. Prints
 * Mbit/s for every row and whether the tunnel meets --target Mbit/s.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addressOf, spawnProgram, type Program } from "../scripts/programs.ts";

type Address = { host: string; port: number };

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
};

if (flag("role", "bench") === "sink") await sink();
else await bench();

/**
 * The sink process. First byte of a connection: 'U' count until EOF, then
 * answer the count as 8 bytes; 'D' + u32 MiB: send that many MiB, then FIN.
 * Prints {"port": N} once listening.
 */
async function sink(): Promise<void> {
  const block = new Uint8Array(256 * 1024).map((_, i) => (i * 131 + 7) & 0xff);
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    let mode = "";
    let count = 0;
    let head = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      if (mode === "") {
        mode = String.fromCharCode(chunk[0]!);
        chunk = chunk.subarray(1);
      }
      if (mode === "U") {
        count += chunk.length;
        return;
      }
      head = Buffer.concat([head, chunk]);
      if (mode === "D" && head.length >= 4 && head.length - chunk.length < 4) {
        void send(socket, head.readUInt32BE(0) * 1024 * 1024, block);
      }
    });
    socket.on("end", () => {
      if (mode !== "U") return;
      const reply = Buffer.alloc(8);
      reply.writeBigUInt64BE(BigInt(count));
      socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + "\n");
}

async function send(socket: net.Socket, total: number, block: Uint8Array): Promise<void> {
  for (let sent = 0; sent < total && !socket.destroyed; ) {
    const n = Math.min(block.length, total - sent);
    sent += n;
    if (!socket.write(block.subarray(0, n))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
  }
  if (!socket.destroyed) socket.end();
}

interface Row {
  path: "direct" | "tunnel";
  direction: "upload" | "download";
  bytes: number;
  seconds: number;
  mbitPerSecond: number;
  /** CPU use of each process during the transfer, percent of one core (Linux only). */
  cpuPercent: Record<string, number>;
}

/** utime + stime of a process in seconds, from /proc (null where unavailable). */
function cpuSeconds(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

async function bench(): Promise<void> {
  const mib = Number(flag("mb", "256"));
  const target = Number(flag("target", "500"));
  const verbose = args.includes("--verbose");
  const stateDir = mkdtempSync(join(tmpdir(), "ztna-bench-tcp-"));
  const programs: Program[] = [];
  const sinkProc = Bun.spawn([process.execPath, import.meta.path, "--role", "sink"], { stdout: "pipe", stderr: "inherit" });
  try {
    const sinkAddr: Address = { host: "127.0.0.1", port: (await firstJsonLine(sinkProc.stdout)).port as number };
    const common = { echo: verbose };
    const packet = ["--max-udp-payload", flag("max-udp-payload", "1350")];
    const server = spawnProgram("server", ["--listen", "127.0.0.1:0", "--ops", "off", "--state-dir", stateDir, ...packet], common);
    programs.push(server);
    const target_ = addressOf(await server.waitForLog("listening"));
    const serverArg = `${target_.host}:${target_.port}`;
    const ca = join(stateDir, "ca.pem");
    const client = ["--server", serverArg, "--server-name", "localhost", "--ca", ca, "--ops", "off", "--state-dir", stateDir, ...packet];
    const connector = spawnProgram("connector", [...client, "--service", "sink", "--forward", `${sinkAddr.host}:${sinkAddr.port}`], common);
    programs.push(connector);
    await connector.waitForLog("registered");
    const agent = spawnProgram("agent", [...client, "--map", "sink=tcp://127.0.0.1:0"], common);
    programs.push(agent);
    const listen = addressOf(await agent.waitForLog("listening", 10_000, (e) => e.service === "sink"));
    await agent.waitForLog("service_up", 10_000, (e) => e.service === "sink");

    const rows: Row[] = [];
    for (const [path, to] of [["direct", sinkAddr], ["tunnel", listen]] as const) {
      for (const direction of ["upload", "download"] as const) {
        const pids: Record<string, number> = { bench: process.pid, sink: sinkProc.pid };
        if (path === "tunnel") for (const p of programs) pids[p.name] = p.pid;
        const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
        const row = await transfer(path, direction, to, mib);
        for (const [k, pid] of Object.entries(pids)) {
          const now = cpuSeconds(pid);
          if (now !== null && before[k] != null) row.cpuPercent[k] = Math.round((100 * (now - before[k]!)) / row.seconds);
        }
        rows.push(row);
        const cpu = Object.entries(row.cpuPercent).map(([k, v]) => `${k} ${v}%`).join(", ");
        console.log(`${path.padEnd(6)} ${direction.padEnd(8)} ${mib} MiB in ${row.seconds.toFixed(2)} s: ${row.mbitPerSecond.toFixed(0)} Mbit/s  (cpu: ${cpu})`);
      }
    }
    const tunnel = Math.min(...rows.filter((r) => r.path === "tunnel").map((r) => r.mbitPerSecond));
    const direct = Math.min(...rows.filter((r) => r.path === "direct").map((r) => r.mbitPerSecond));
    const met = tunnel >= target;
    console.log(`tunnel ${tunnel.toFixed(0)} Mbit/s (slower direction) vs direct ${direct.toFixed(0)} Mbit/s: ${(100 * tunnel / direct).toFixed(1)}% of direct`);
    console.log(`target >= ${target} Mbit/s through the tunnel: ${met ? "met" : "NOT met"}`);
    const out = flag("json", "");
    if (out) writeFileSync(out, JSON.stringify({ mib, target, met, rows }, null, 2) + "\n");
  } finally {
    await Promise.all(programs.reverse().map((p) => p.stop("SIGTERM", 5_000)));
    sinkProc.kill();
    await sinkProc.exited;
    rmSync(stateDir, { recursive: true, force: true });
  }
}

async function transfer(path: Row["path"], direction: Row["direction"], to: Address, mib: number): Promise<Row> {
  const bytes = mib * 1024 * 1024;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: to.host, port: to.port, allowHalfOpen: true, noDelay: true });
    s.once("error", reject);
    s.once("connect", () => resolve(s));
  });
  const started = performance.now();
  let received = 0;
  const reply: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (direction === "upload") reply.push(chunk);
    });
    socket.on("end", () => resolve());
    socket.on("error", (error) => reject(new Error(`${path} ${direction}: ${error.message} after ${received} bytes received`)));
  });
  // A reset while still sending must surface as this row's error, not hang the send loop.
  done.catch(() => socket.destroy());
  if (direction === "upload") {
    socket.write("U");
    await Promise.race([send(socket, bytes, new Uint8Array(256 * 1024).fill(0x5a)), done]);
    await done;
    const counted = Number(Buffer.concat(reply).readBigUInt64BE(0));
    if (counted !== bytes) throw new Error(`${path} upload: sink counted ${counted} of ${bytes} bytes`);
  } else {
    const request = Buffer.alloc(5);
    request.write("D");
    request.writeUInt32BE(mib, 1);
    socket.end(request);
    await done;
    if (received !== bytes) throw new Error(`${path} download: received ${received} of ${bytes} bytes`);
  }
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  return { path, direction, bytes, seconds, mbitPerSecond: (bytes * 8) / seconds / 1e6, cpuPercent: {} };
}

async function firstJsonLine(stream: ReadableStream<Uint8Array>): Promise<Record<string, unknown>> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    const nl = text.indexOf("\n");
    if (nl >= 0) return JSON.parse(text.slice(0, nl));
  }
  throw new Error("sink exited before reporting its port");
}
